import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_api_reference_is_up_to_date() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_reference.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, "docs/reference.md is stale: run python scripts/gen_reference.py"
