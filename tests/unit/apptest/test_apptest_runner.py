"""`treadle test`: Go test files unchanged, fixture apps, and the report of failing tests."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from treadle.apptest import (
    TestReport,
    discover,
    exit_code,
    main,
    render_report,
    render_reports,
    run_test_file,
    run_test_file_async,
)

FIXTURES = Path(__file__).parent / "fixtures"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_the_go_projects_test_file_runs_unchanged() -> None:
    report = run_test_file(FIXTURES / "simple_test.yaml")
    assert [(c.name, c.passed) for c in report.cases] == [
        ("greet-alice", True), ("greet-bob", True), ("greet-step-output", True),
        ("fetch-users-mocked", True), ("fetch-users-per-test-mock", True)]
    assert report.ok and exit_code([report]) == 0
    assert report.case("greet-alice").description == "greet pipeline sets message correctly"


def test_fixture_app_with_http_state_machine_mocks_and_sequences(http_mode: str) -> None:
    report = run_test_file(FIXTURES / "orders_test.yaml")
    failures = {c.name: [str(f) for f in c.failures] for c in report.cases if not c.passed}
    assert failures == {}
    assert [c.name for c in report.cases] == ["create-over-http", "create-rejects-missing-fields",
                                              "lifecycle", "lookup-mocked-by-name", "stop-after"]


def test_the_report_of_failing_tests(http_mode: str) -> None:
    report = run_test_file(FIXTURES / "failing_test.yaml")
    assert (report.passed, report.failed, report.ok) == (1, 12, False)
    assert exit_code([report]) == 1

    def failures(name: str) -> list[tuple[str, str, object, object]]:
        return [(f.label, f.path, f.to_json().get("expected"), f.to_json().get("actual"))
                for f in report.case(name).failures]

    assert failures("wrong-output") == [("[0]", 'output["message"]', "hello bob",
                                         "hello alice")]
    assert failures("wrong-step-output") == [
        ("[0]", 'steps.set_msg.output["message"]', "hi alice", "hello alice"),
        ("[0]", 'steps.set_msg.output["extra"]', 1, None)]
    assert failures("executed-mismatch") == [("[0]", "steps.set_upper", False, True),
                                             ("[1]", "steps.nope", True, False)]
    messages = {c.name: [f.message for f in c.failures] for c in report.cases}
    assert messages["missing-step"] == ["step 'ghost' has no output (did it execute?)"]
    assert messages["pipeline-error"] == [
        "pipeline returned error: step 'check' failed: validate step 'check': missing "
        "required fields: order_id"]  # and `executed: true` held: a failed step ran
    assert messages["unknown-pipeline"][0].startswith(
        "pipeline returned error: no pipeline named 'nope'")
    assert messages["no-trigger-name"] == [
        "trigger: trigger.name is required for pipeline triggers"]
    assert messages["bad-trigger-type"][0].startswith("trigger: unsupported trigger type 'grpc'")
    assert messages["stop-after-unknown"] == [
        "engine setup: stop_after: step 'zz' not found in pipeline 'greet'"]
    assert failures("http-mismatch")[0] == ("[0]", "response.status", 201, 202)
    assert failures("http-mismatch")[1][:3] == ("[0]", "response.body", "bye")
    assert messages["response-on-pipeline"] == [
        "response: HTTP response assertions need an http trigger"]
    assert messages["state-mismatch"] == ["state[sessions][s1]: key not found"]
    assert report.case("passes-with-unused-mock").notes == [
        "mock 'step.nothing' matches no step type or step name"]

    text = render_report(report)
    assert "  PASS passes-with-unused-mock" in text
    assert "  FAIL wrong-output" in text
    assert '       [0] output["message"]: want hello bob, got hello alice\n' \
           '         expected: "hello bob"\n' \
           '         actual:   "hello alice"' in text
    assert '         actual:   <missing>' in text
    assert text.endswith("--- failing_test.yaml: 1 passed, 12 failed")
    json.dumps(report.to_json())


def test_cases_do_not_share_state(tmp_path: Path) -> None:
    path = _write(tmp_path, "iso_test.yaml", """
    yaml: |
      modules:
        - {name: sm, type: statemachine.engine}
      workflows:
        statemachine:
          engine: sm
          definitions:
            - name: t
              initialState: a
              states: {a: {}, b: {}}
              transitions: {go: {fromState: a, toState: b}}
      pipelines:
        make:
          steps:
            - name: c
              type: step.statemachine_create
              config: {statemachine: sm, workflow_type: t, entity_id: x}
    tests:
      first:
        trigger: {name: make}
        assertions: [{output: {created: true}}]
      second:
        trigger: {name: make}
        assertions: [{output: {created: true}}]
    """)
    report = run_test_file(path)
    assert report.ok, render_report(report)


def test_mocks_by_name_win_over_mocks_by_type_and_skip_rendering(tmp_path: Path) -> None:
    path = _write(tmp_path, "mock_test.yaml", """
    yaml: |
      pipelines:
        p:
          steps:
            - name: a
              type: step.set
              config: {values: {x: "{{ .missing.deep.path }}"}}
            - name: b
              type: step.set
              config: {values: {y: 2}}
            - name: wait
              type: step.wait_signal
              config: {signal: approval}
    mocks:
      steps:
        step.set: {from_type: true}
    tests:
      t:
        trigger: {name: p}
        mocks:
          steps:
            a: {from_name: true}
            step.wait_signal: {approved: true, word: yes}
        assertions:
          - step: a
            output: {from_name: true}
          - step: b
            output: {from_type: true}
          - output: {approved: true, word: "yes", from_name: true, from_type: true}
    """)
    report = run_test_file(path)
    assert report.ok, render_report(report)


def test_a_pipeline_that_never_ends_times_out(tmp_path: Path) -> None:
    path = _write(tmp_path, "wait_test.yaml", """
    yaml: |
      pipelines:
        p:
          steps:
            - name: wait
              type: step.wait_signal
              config: {signal: never}
    tests:
      t:
        trigger: {name: p}
        assertions: [{output: {a: 1}}]
    """)
    report = run_test_file(path, timeout=0.2)
    [failure] = report.case("t").failures
    assert failure.message == "pipeline returned error: pipeline 'p' did not finish within 0.2s"


def test_config_errors_fail_every_case(tmp_path: Path) -> None:
    _write(tmp_path, "app.yaml", """
    pipelines:
      p:
        steps:
          - name: s
            type: step.nope
    """)
    path = _write(tmp_path, "bad_test.yaml", """
    config: app.yaml
    tests:
      one: {trigger: {name: p}}
      two: {trigger: {name: p}}
    """)
    report = run_test_file(path)
    assert report.failed == 2
    for case in report.cases:
        [failure] = case.failures
        assert failure.message.startswith("engine setup: ")
        assert "configuration has 1 error" in failure.message
        assert "unknown step type 'step.nope'" in failure.message
    assert "\n           - " in render_report(report)  # the error list, indented
    assert "app.yaml:6 [pipelines.p.steps[0].type]" in render_report(report)


@pytest.mark.parametrize(("text", "message"), [
    ("tests: {t: {trigger: {name: p}}}\n", "test file must set 'yaml' or 'config'"),
    ("config: missing.yaml\ntests: {t: {}}\n", "missing.yaml"),
    ("yaml: 'x: [1'\ntests: {t: {}}\n", "engine setup: load config"),
])
def test_setup_errors(tmp_path: Path, text: str, message: str) -> None:
    report = run_test_file(_write(tmp_path, "x_test.yaml", text))
    assert message in report.error and not report.ok


@pytest.mark.parametrize(("text", "message"), [
    ("tests: [1, 2]\n", "tests must be a mapping"),
    ("yaml: 'a: 1'\ntests: {t: {assertions: {output: 1}}}\n", "must be a list"),
    ("yaml: 'a: 1'\ntests: {t: {assertions: [{executed: maybe}]}}\n",
     "executed must be true or false"),
    ("tests: {t: [\n", "parse:"),
])
def test_malformed_test_files(tmp_path: Path, text: str, message: str) -> None:
    report = run_test_file(_write(tmp_path, "x_test.yaml", text))
    assert message in report.error and report.failed == 1 and exit_code([report]) == 1


async def test_async_entry_point_and_empty_files(tmp_path: Path) -> None:
    report = await run_test_file_async(_write(tmp_path, "empty_test.yaml", "yaml: 'a: 1'\n"))
    assert report.ok and report.cases == []
    assert "no tests" in render_report(report)


def test_discover_and_cli(tmp_path: Path) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    for name in ("simple_test.yaml", "failing_test.yaml"):
        (folder / name).write_text((FIXTURES / name).read_text())
    (folder / "notes.yaml").write_text("x: 1\n")
    assert [p.name for p in discover([folder])] == ["failing_test.yaml", "simple_test.yaml"]

    out = io.StringIO()
    assert main([str(folder / "simple_test.yaml")], out=out) == 0
    assert "--- simple_test.yaml: 5 passed, 0 failed" in out.getvalue()
    out = io.StringIO()
    assert main([str(folder)], out=out) == 1
    assert out.getvalue().rstrip().endswith("--- Summary ---\n  6 passed, 12 failed")
    out = io.StringIO()
    assert main(["--json", str(folder / "simple_test.yaml")], out=out) == 0
    [data] = json.loads(out.getvalue())
    assert data["passed"] == 5 and data["cases"][0]["name"] == "greet-alice"
    assert main([], out=io.StringIO()) == 2
    assert main([str(tmp_path / "nothing-here")], out=io.StringIO()) == 1  # unreadable file
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty")], out=io.StringIO()) == 2


def test_render_reports_verbose_shows_descriptions() -> None:
    report = run_test_file(FIXTURES / "simple_test.yaml")
    text = render_reports([report], verbose=True)
    assert "       greet pipeline sets message correctly" in text
    assert isinstance(report, TestReport)


def test_unrouted_requests_and_wrong_methods(tmp_path: Path, http_mode: str) -> None:
    path = _write(tmp_path, "routes_test.yaml", """
    yaml: |
      triggers:
        http:
          routes:
            - {path: "/items/{id}", method: GET, workflow: "pipeline:item"}
      pipelines:
        item:
          steps:
            - name: parse
              type: step.request_parse
              config: {path_params: [id], query_params: [v]}
            - name: out
              type: step.set
              config:
                values: {_pipeline_output: {id: "{{ .steps.parse.path_params.id }}",
                                            v: "{{ .steps.parse.query.v }}"}}
    tests:
      found:
        trigger: {type: http.get, path: "/items/42?v=x", headers: {X-Trace: abc}}
        assertions:
          - response: {status: 200, body: '"id":"42"'}
          - output: {id: "42", v: x}
          - step: parse
            output: {path_params.id: "42"}
      not-found:
        trigger: {type: get, path: /nothing}
        assertions: [{response: {status: 404}}]
      wrong-method:
        trigger: {type: http.delete, path: /items/1}
        assertions: [{response: {status: 405}}]
    """)
    report = run_test_file(path)
    assert report.ok, render_report(report)


def test_mocks_reach_the_sub_steps_of_foreach_and_parallel(tmp_path: Path) -> None:
    path = _write(tmp_path, "nested_test.yaml", """\
        yaml: |
          pipelines:
            enrich:
              steps:
                - name: each
                  type: step.foreach
                  config:
                    collection: ids
                    step:
                      name: lookup
                      type: step.http_call
                      config: {url: "http://127.0.0.1:9/users/{{ .item }}"}
                - name: both
                  type: step.parallel
                  config:
                    steps:
                      - {name: left, type: step.db_query, config: {database: db, query: "SELECT 1"}}
                      - {name: right, type: step.set, config: {values: {side: right}}}
        mocks:
          steps:
            lookup: {status_code: 200, body: {name: mocked}}
            step.db_query: {rows: [{one: 1}], count: 1}
        tests:
          nested:
            trigger: {type: pipeline, name: enrich, data: {ids: [a, b]}}
            assertions:
              - step: each
                output:
                  count: 2
                  results:
                    - {status_code: 200, body: {name: mocked}}
                    - {status_code: 200, body: {name: mocked}}
              - step: both
                output:
                  results: {left: {rows: [{one: 1}], count: 1}, right: {side: right}}
              - executed_steps: [each, both]
        """)
    report = run_test_file(path)
    case = report.case("nested")
    assert case.passed, [str(f) for f in case.failures]
    assert case.notes == []  # both mock keys were used


def test_a_mock_matching_no_step_or_sub_step_is_noted(tmp_path: Path) -> None:
    path = _write(tmp_path, "unused_test.yaml", """\
        yaml: |
          pipelines:
            p:
              steps:
                - {name: s, type: step.set, config: {values: {a: 1}}}
        mocks:
          steps:
            nowhere: {x: 1}
        tests:
          t:
            trigger: {type: pipeline, name: p}
            assertions:
              - output: {a: 1}
        """)
    case = run_test_file(path).case("t")
    assert case.passed and case.notes == ["mock 'nowhere' matches no step type or step name"]


def test_the_go_projects_stateful_test_runs_unchanged() -> None:
    report = run_test_file(FIXTURES / "stateful_test.yaml")
    assert [(c.name, c.passed) for c in report.cases] == [("card-game-sequence", True)]


def test_state_stores_are_seeded_and_asserted(tmp_path: Path) -> None:
    (tmp_path / "players.json").write_text('{"p1": {"score": 3}}')
    path = _write(tmp_path, "stateful_test.yaml", """\
        yaml: |
          modules:
            - {name: sessions, type: cache.modular}
          pipelines:
            take-turn:
              steps:
                - {name: read, type: step.cache_get, config: {cache: sessions, key: game-1}}
                - name: write
                  type: step.cache_set
                  config: {cache: sessions, key: game-1, value: {turn: p2}}
            noop:
              steps:
                - {name: s, type: step.set, config: {values: {a: 1}}}
        tests:
          game:
            state:
              fixtures:
                - {file: players.json, target: players}
              seed:
                sessions: {game-1: {turn: p1}}
            sequence:
              - name: before
                pipeline: noop
                assertions:
                  - state: {sessions: {game-1: {turn: p1}}, players: {p1: {score: 3}}}
              - name: turn
                pipeline: take-turn
                assertions:
                  - step: read
                    output: {value: {turn: p1}}
                  - state: {sessions: {game-1: {turn: p2}}}
          wrong:
            state: {seed: {sessions: {k: 1}}}
            trigger: {name: noop}
            assertions:
              - state: {sessions: {k: 2, gone: 0}}
        """)
    report = run_test_file(path)
    game = report.case("game")
    assert game.passed, [str(f) for f in game.failures]
    assert [f.message for f in report.case("wrong").failures] == [
        "state[sessions][k]: want 2, got 1", "state[sessions][gone]: key not found"]
