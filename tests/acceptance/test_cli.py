"""`treadle run`, the root command and bad input, run as a subprocess against SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import treadle

if TYPE_CHECKING:
    from acceptance.conftest import Cli


def test_version(cli: Cli) -> None:
    assert cli.ok("--version").strip() == f"treadle {treadle.__version__}"


def test_installed_script_runs(cli: Cli) -> None:
    script = Path(sys.executable).parent / "treadle"
    if not script.exists():
        pytest.skip("the treadle console script is not installed next to this python")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                         env=cli.env, cwd=cli.cwd, timeout=60)
    assert out.returncode == 0 and treadle.__version__ in out.stdout
    # unlike `python -m`, the script does not put the current directory on sys.path: run does
    (cli.cwd / "scriptflows.py").write_text(
        "import treadle\n\n@treadle.workflow(name='script-inc')\n"
        "async def inc(ctx, x):\n    return x + 1\n"
    )
    out = subprocess.run([str(script), "run", "scriptflows:inc", "--input", "1", "--json"],
                         capture_output=True, text=True, env=cli.env, cwd=cli.cwd, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == 2


def test_help_lists_the_commands(cli: Cli) -> None:
    out = cli.ok("--help")
    assert "run" in out and "executions" in out
    sub = cli.ok("executions", "--help")
    for name in ("list", "show", "events", "signal", "cancel", "resume", "prune"):
        assert name in sub
    assert "TREADLE_STORE" in cli.ok("executions", "list", "--help")


def test_importing_treadle_cli_does_not_import_typer() -> None:
    code = "import sys, treadle, treadle.cli; print('typer' in sys.modules, 'rich' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_missing_cli_extra_prints_the_pip_hint() -> None:
    code = ("import sys; sys.modules['typer'] = None; "
            "from treadle.cli import main; main(['--version'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert "pip install 'treadle[cli]'" in out.stderr


def test_a_missing_extra_behind_an_error_prints_only_the_hint() -> None:
    from treadle.cli.errors import error_lines
    from treadle.errors import MissingExtraError, StoreError

    try:
        try:
            raise MissingExtraError("postgres", "psycopg")
        except ImportError as exc:
            raise StoreError("cannot open postgresql://db/x") from exc
    except StoreError as exc:
        lines = error_lines(exc)
    assert lines == ["error: psycopg is needed for this feature: pip install 'treadle[postgres]'"]


def test_errors_print_their_cause_chain() -> None:
    from treadle.cli.errors import error_lines, recorded_chain

    try:
        try:
            raise KeyError("k")
        except KeyError as exc:
            raise RuntimeError("outer") from exc
    except RuntimeError as exc:
        assert error_lines(exc) == ["error: RuntimeError: outer", "  caused by: KeyError: 'k'"]
        import traceback

        record = {"type": "RuntimeError", "message": "outer",
                  "traceback": "".join(traceback.format_exception(exc))}
    assert recorded_chain(record) == ["RuntimeError: outer", "KeyError: 'k'"]
    assert recorded_chain({"type": "ValueError", "message": "m"}) == ["ValueError: m"]
    assert recorded_chain(None) == []


# -- run: success -------------------------------------------------------------------------------


def test_run_prints_result_status_and_steps(cli: Cli) -> None:
    out = cli.ok("run", "cliflows:greet", "--input", '{"name": "ann"}')
    head = out.splitlines()[0].split()
    assert head[0] == "execution" and head[2:4] == ["greet", "v1"] and "completed" in head
    execution_id = head[1]
    assert "make_greeting" in out and "shout" in out
    result = json.loads(out[out.index("\n{") :])
    assert result == {"greeting": "hello ann", "loud": "HELLO ANN"}

    view = cli.json("executions", "show", execution_id)
    assert view["id"] == execution_id and view["status"] == "completed"
    assert view["input"] == {"name": "ann"}
    assert view["output"] == result
    steps = {s["name"]: s for s in view["steps"]}
    assert steps["make_greeting"]["status"] == "completed"
    assert steps["make_greeting"]["output"] == "hello ann"
    assert steps["shout"]["output"] == "HELLO ANN"
    assert all(s["duration_ms"] is not None and s["attempts"] == 1 for s in view["steps"])
    assert view["created_at"].endswith("Z") and view["finished_at"].endswith("Z")


def test_run_json_with_several_arguments(cli: Cli) -> None:
    view = cli.json("run", "cliflows:add", "--args", "[2, 3]")
    assert view["status"] == "completed" and view["output"] == 5 and view["args"] == [2, 3]
    assert [s["name"] for s in view["steps"]] == ["add_step"]


def test_run_without_input_and_with_a_registered_name(cli: Cli) -> None:
    assert cli.json("run", "cliflows:echo")["output"] is None
    assert cli.json("run", "cliflows:greet", "--input", '{"name": "x"}')["workflow"] == "greet"


def test_run_reads_input_from_a_file_and_stdin(cli: Cli) -> None:
    (cli.cwd / "in.json").write_text('{"name": "file"}')
    assert cli.json("run", "cliflows:greet", "--input", "@in.json")["output"]["loud"] == \
        "HELLO FILE"
    assert cli.json("run", "cliflows:echo", "--input", "@-", stdin='[1, "two"]')["output"] == \
        [1, "two"]


def test_run_imports_a_module_of_the_current_directory(cli: Cli) -> None:
    (cli.cwd / "localflows.py").write_text(
        "import treadle\n\n"
        "@treadle.workflow(name='local-double', registry=treadle.Registry())\n"
        "async def double(ctx, x):\n    return 2 * x\n"
    )
    assert cli.json("run", "localflows:double", "--input", "21")["output"] == 42
    assert cli.json("run", "localflows.py:double", "--input", "4")["output"] == 8


def test_run_options_have_environment_twins(cli: Cli) -> None:
    out = cli("run", "cliflows:echo", env={"TREADLE_INPUT": '"from env"', "TREADLE_JSON": "1"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["output"] == "from env"
    other = f"sqlite:///{cli.cwd}/other.db"
    cli.ok("run", "cliflows:echo", env={"TREADLE_STORE": other})
    assert len(cli.json("executions", "list", "--store", other)["items"]) == 1
    assert len(cli.json("executions", "list")["items"]) == 1


def test_run_with_an_idempotency_key_runs_once(cli: Cli) -> None:
    first = cli.json("run", "cliflows:echo", "--input", '"a"', "--idempotency-key", "k1")
    again = cli("run", "cliflows:echo", "--input", '"b"', "--idempotency-key", "k1", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == first["id"]
    assert json.loads(again.stdout)["output"] == "a"
    assert "already exists" in again.stderr
    assert len(cli.json("executions", "list")["items"]) == 1


def test_default_store_is_under_dot_treadle(cli: Cli) -> None:
    env = {k: v for k, v in cli.env.items() if k != "TREADLE_STORE"}
    out = subprocess.run(cli.command("run", "cliflows:echo", "--input", "1"), cwd=cli.cwd,
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (cli.cwd / ".treadle" / "treadle.db").exists()


# -- run: failure -------------------------------------------------------------------------------


def test_run_failure_exits_1_with_the_cause_chain(cli: Cli) -> None:
    out = cli("run", "cliflows:pay", "--input", '{"amount": 5}')
    assert out.returncode == 1
    assert "error: cliflows.PaymentDeclinedError: card declined" in out.stderr
    assert "caused by: ValueError: card expired before charging 5" in out.stderr
    assert "failed" in out.stdout.splitlines()[0]
    execution_id = out.stdout.split()[1]

    view = cli.json("executions", "show", execution_id)
    assert view["status"] == "failed"
    assert view["error"]["type"] == "cliflows.PaymentDeclinedError"
    assert "Traceback" in view["error"]["traceback"]
    assert view["steps"][0]["status"] == "failed"
    shown = cli.ok("executions", "show", execution_id)
    assert "caused by: ValueError: card expired" in shown and "Traceback" in shown


def test_run_failure_with_json_still_exits_1(cli: Cli) -> None:
    out = cli("run", "cliflows:pay", "--input", '{"amount": 5}', "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["error"]["message"] == "card declined"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "option", "message"), [
    (["--input", "{not json"], "--input", "not valid JSON"),
    (["--input", "@missing.json"], "--input", "cannot read missing.json"),
    (["--args", '{"a": 1}'], "--args", "JSON array"),
    (["--input", "1", "--args", "[1]"], "--args", "not both"),
])
def test_bad_input_is_a_usage_error_naming_the_option(
    cli: Cli, args: list[str], option: str, message: str
) -> None:
    out = cli("run", "cliflows:echo", *args)
    assert out.returncode == 2
    assert option in out.stderr and message in out.stderr
    assert cli.json("executions", "list")["items"] == []


@pytest.mark.parametrize(("target", "messages"), [
    ("nosuchmodule:flow", ["cannot import module 'nosuchmodule'", "no module named"]),
    ("broken_flows:flow", ["cannot import module 'broken_flows'",
                           "caused by: RuntimeError: cannot configure the flows",
                           "caused by: KeyError: 'settings'"]),
    ("cliflows:nope", ["has no workflow 'nope'", "greet"]),
    ("cliflows", ["expected MODULE:WORKFLOW"]),
    ("cliflows:PaymentDeclinedError", ["not a @treadle.workflow"]),
])
def test_unknown_workflows_exit_1_with_a_clear_error(
    cli: Cli, target: str, messages: list[str]
) -> None:
    out = cli("run", target)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ")
    for message in messages:
        assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_store_scheme_names_the_store_option(cli: Cli) -> None:
    out = cli("executions", "list", "--store", "mongo://localhost/db")
    assert out.returncode == 2
    assert "--store" in out.stderr and "unknown store URL 'mongo://localhost/db'" in out.stderr
    out = cli("run", "cliflows:echo", env={"TREADLE_STORE": "nope://"})
    assert out.returncode == 2 and "--store" in out.stderr
