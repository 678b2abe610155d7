"""The complete application of docs/yaml-guide.md validates and runs as described."""

from __future__ import annotations

import json
import re
from pathlib import Path

import treadle
from treadle.apps import build_app
from treadle.config.validate import validate_report
from treadle.modules.web import HTTPRequest

GUIDE = Path(__file__).parents[3] / "docs" / "yaml-guide.md"


def _apps() -> dict[str, str]:
    blocks = re.findall(r"```yaml\n(# app: (\S+)\n.*?)```", GUIDE.read_text(), re.S)
    return {name: text for text, name in blocks}


def test_the_guide_application_validates(tmp_path: Path) -> None:
    apps = _apps()
    assert "items.yaml" in apps
    for name, text in apps.items():
        (tmp_path / name).write_text(text)
        report = validate_report(tmp_path / name)
        assert report.errors == [] and report.warnings == [], name


async def test_the_guide_application_runs(tmp_path: Path) -> None:
    path = tmp_path / "items.yaml"
    path.write_text(_apps()["items.yaml"])
    engine = treadle.Engine("memory://", registry=treadle.Registry())
    runtime = build_app(path, engine)
    async with runtime:
        created = await runtime.handle(HTTPRequest("POST", "/items", "/items",
                                                   body=b'{"name": "pen"}'))
        assert created.status == 201
        item_id = json.loads(created.body)["id"]
        got = await runtime.handle(HTTPRequest("GET", f"/items/{item_id}", f"/items/{item_id}"))
        assert json.loads(got.body) == {"id": item_id, "name": "pen"}
        bad = await runtime.handle(HTTPRequest("POST", "/items", "/items", body=b"{}"))
        assert bad.status == 400
    await engine.close()
