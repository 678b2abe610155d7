"""The examples of docs/testing-yaml.md and docs/statemachines.md run."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import yaml

from treadle.apptest import render_report, run_test_file

DOCS = Path(__file__).parents[3] / "docs"


def _block(doc: str, lang: str, first_line: str) -> str:
    for body in re.findall(rf"```{lang}\n(.*?)```", (DOCS / doc).read_text(), re.DOTALL):
        if body.startswith(first_line):
            return str(body)
    raise AssertionError(f"no {lang} block starting with {first_line!r} in {doc}")


def test_testing_yaml_example_passes(tmp_path: Path) -> None:
    path = tmp_path / "app_test.yaml"
    path.write_text(_block("testing-yaml.md", "yaml", "# app_test.yaml"))
    report = run_test_file(path)
    assert report.ok, render_report(report)
    assert [c.name for c in report.cases] == ["greet-alice", "greet-over-http", "stop-early"]


def test_statemachines_example_app(tmp_path: Path) -> None:
    app = yaml.safe_load(_block("statemachines.md", "yaml", "# app.yaml"))
    app["pipelines"]["open-order"] = {"steps": [{
        "name": "c", "type": "step.statemachine_create",
        "config": {"statemachine": "order-processor", "workflow_type": "order-workflow",
                   "entity_id": "{{ .order_id }}"}}]}
    (tmp_path / "app.yaml").write_text(yaml.safe_dump(app))
    (tmp_path / "app_test.yaml").write_text(textwrap.dedent("""
    config: app.yaml
    tests:
      lifecycle:
        sequence:
          - name: create
            trigger: {name: open-order, data: {order_id: o-1}}
            assertions: [{output: {created: true, current_state: new}}]
          - name: pay
            pipeline: order-event
            trigger: {data: {order_id: o-1, event: pay, user: ann}}
            assertions: [{output: {transition_ok: true, new_state: packing}}]
          - name: ship-refused-by-the-hook
            pipeline: order-event
            trigger: {data: {order_id: o-1, event: ship, user: ann}}
            assertions:
              - output: {transition_ok: false}
              - step: move
                executed: true
    """))
    report = run_test_file(tmp_path / "app_test.yaml")
    assert report.ok, render_report(report)


def test_statemachines_python_example_runs() -> None:
    code = _block("statemachines.md", "python", "import asyncio")
    exec(compile(code, "docs/statemachines.md", "exec"), {})
