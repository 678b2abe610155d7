"""Run every example on the embedded SQLite default and print what each returns.

    python examples/run_all.py [STORE_URL]     (default: sqlite:///./.treadle/examples.db)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).parent
EXAMPLES = ["order_saga", "approval", "fan_out"]


def main() -> None:
    store = sys.argv[1] if len(sys.argv) > 1 else "sqlite:///./.treadle/examples.db"
    for name in EXAMPLES:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        print(f"== {name} ({store})")
        module.main(store)
    print(f"\nInspect the journal: treadle executions list --store {store}")


if __name__ == "__main__":
    main()
