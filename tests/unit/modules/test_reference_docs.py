"""docs/modules.md is generated from the module registry and kept current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from treadle.modules.reference import MARKER, regenerate, render_reference
from treadle.modules.registry import default_registry

DOC = Path(__file__).parents[3] / "docs" / "modules.md"


def test_docs_modules_md_is_current() -> None:
    text = DOC.read_text()
    assert MARKER in text
    assert regenerate(text) == text, "run: python -m treadle.modules.reference"


def test_every_module_type_is_documented() -> None:
    reference = render_reference()
    for name in default_registry.types():
        assert f"### `{name}`" in reference


def test_reference_cli_check(tmp_path: Path) -> None:
    stale = tmp_path / "modules.md"
    stale.write_text("# Modules\n\nhand-written\n")
    cmd = [sys.executable, "-m", "treadle.modules.reference"]
    assert subprocess.run([*cmd, str(stale), "--check"], capture_output=True).returncode == 1
    assert subprocess.run([*cmd, str(stale)], capture_output=True).returncode == 0
    assert subprocess.run([*cmd, str(stale), "--check"], capture_output=True).returncode == 0
    assert stale.read_text().startswith("# Modules\n\nhand-written\n")
