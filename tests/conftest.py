"""Shared fixtures: store URLs for every backend the machine offers."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """A fresh store URL per test, for the embedded backends."""
    if request.param == "memory":
        return "memory://"
    return f"sqlite:///{tmp_path}/treadle.db"
