"""docs/api.md is generated from /openapi.json and kept current."""

from __future__ import annotations

from treadle.server import apidoc


def test_api_reference_is_up_to_date() -> None:
    assert apidoc.main(["--check"]) == 0, "docs/api.md is stale: python -m treadle.server.apidoc"
