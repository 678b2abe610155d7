"""Fixtures of the `treadle test` tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(params=["serving-layer", "direct"])
def http_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """HTTP triggers through treadle.apps when installed, and through the built-in dispatch."""
    if request.param == "direct":
        monkeypatch.setitem(sys.modules, "treadle.apps", None)  # import fails
    else:
        pytest.importorskip("treadle.apps")
    yield request.param
