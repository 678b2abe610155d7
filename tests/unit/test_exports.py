import subprocess
import sys

import treadle

EXPECTED = {
    "Clock", "Context", "Engine", "Event", "EventType", "Execution", "ExecutionCancelledError",
    "ExecutionFailedError", "ExecutionNotFoundError", "ExecutionStatus", "ExecutionSummary",
    "Handle", "NonDeterminismError", "NotSerializableError", "Observer", "Page", "Registry",
    "RetryPolicy", "SignalTimeoutError", "StepError", "StepFunction", "StepRecord",
    "StepTimeoutError", "TreadleError", "WorkflowDef", "WorkflowNotFoundError",
    "WorkflowVersionError", "__version__", "step", "workflow", "StepInfo", "current_step",
    "Queue", "QueueFullError", "DeadLetter", "LockTimeoutError",
}


def test_public_surface_is_pinned() -> None:
    assert set(treadle.__all__) == EXPECTED
    for name in treadle.__all__:
        assert hasattr(treadle, name), name


def test_import_treadle_needs_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import treadle; "
        "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
        "print(','.join(sorted(new)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.strip().split(","))
    stdlib = set(sys.stdlib_module_names) | {"treadle", "_distutils_hack"}
    assert loaded - stdlib == set(), f"import treadle loaded third-party modules: {loaded - stdlib}"


def test_status_prints_its_bare_value() -> None:
    assert str(treadle.ExecutionStatus.SUSPENDED) == "suspended"
    assert f"{treadle.ExecutionStatus.COMPLETED}" == "completed"


def test_declaring_workflows_does_not_load_the_engine() -> None:
    code = (
        "import sys, treadle\n"
        "@treadle.step\n"
        "async def s(x): return x\n"
        "@treadle.workflow(name='w')\n"
        "async def w(ctx, x): return await s(x)\n"
        "assert 'asyncio' not in sys.modules, 'declaring loaded asyncio'\n"
        "assert treadle.Engine().run(w, 3) == 3\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
