"""Every example in examples/ runs, as a user would run it, and prints what it promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
EXPECTED = {
    "order_saga.py": ["shipped: {'charge': 'ch_1', 'tracking': 'TRK-1'}",
                      "compensations: ['refunded ch_2', 'released BOOK x2']"],
    "approval.py": ["paid 40 (approved by auto)", "waiting for a decision: suspended",
                    "paid 900 (approved by ann)"],
    "fan_out.py": ["report: {'baskets': 3, 'revenue': 11.0}"],
}


def test_every_python_example_is_covered() -> None:
    found = {p.name for p in EXAMPLES.glob("*.py")} - {"run_all.py"}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_example_runs(name: str, store: str, tmp_path: Path) -> None:
    url = "memory://" if store == "memory" else f"sqlite:///{tmp_path}/ex.db"
    out = subprocess.run([sys.executable, str(EXAMPLES / name), url], capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    for line in EXPECTED[name]:
        assert line in out.stdout


def test_run_all_uses_the_sqlite_default(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(EXAMPLES / "run_all.py")], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / ".treadle" / "examples.db").exists()
    assert "report:" in out.stdout
