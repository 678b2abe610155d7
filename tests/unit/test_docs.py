"""The code blocks of the user guide and README run, and the docstring examples pass."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text())


RUNNABLE = ("guide.md", "operations.md")


@pytest.mark.parametrize(("doc", "index"), [
    (doc, index) for doc in RUNNABLE for index in range(len(blocks(ROOT / "docs" / doc)))])
def test_guide_block_runs(doc: str, index: int, tmp_path: Path) -> None:
    code = blocks(ROOT / "docs" / doc)[index]
    exec(compile(code, f"docs/{doc}#block{index}", "exec"), {"tmp": str(tmp_path)})


@pytest.mark.parametrize("module", [
    "treadle.journal.retry", "treadle.engine.decorators", "treadle.engine.engine",
])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
