"""Shared fixtures: store URLs for every backend the machine offers."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh store URL per test, for the embedded backends."""
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path}/treadle.db"


@pytest.fixture(autouse=True)
def _treadle_logging_restored() -> Iterator[None]:
    """CLI commands invoked in-process (typer's CliRunner) configure the `treadle` loggers for
    a terminal (`setup_logging`: a stderr handler, WARNING): undo it after each test, so a
    later test's `caplog` sees the records as a fresh process would."""
    loggers = [logging.getLogger(name) for name in ("treadle", "treadle.server", "treadle.worker")]
    saved = [(lg, lg.level, list(lg.handlers)) for lg in loggers]
    yield
    for lg, level, handlers in saved:
        lg.setLevel(level)
        lg.handlers[:] = handlers
