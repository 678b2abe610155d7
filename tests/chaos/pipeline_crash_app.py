"""A process that runs a YAML pipeline on SQLite, to be killed with SIGKILL by
test_pipeline_crash.py.

    python pipeline_crash_app.py start STORE EFFECTS      # prints the execution id, then runs
    python pipeline_crash_app.py recover STORE EFFECTS    # resumes what the dead process left

The pipeline mixes pure steps (`test.probe`, declared `pure=True` like the built-in data
steps, and built-in `step.set` / `step.jq`) with steps that have effects (`test.effect`).
Both test types append `start:<name>` and `done:<name>` lines to the EFFECTS file; with
TREADLE_BLOCK=<name> in the environment, that step blocks forever once started.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import treadle
from treadle.config.loader import load_config_text
from treadle.pipelines import load_application
from treadle.steps._context import PipelineContext
from treadle.steps.registry import StepRegistry, default_registry

APP = """
name: crash-pipeline
pipelines:
  mixed:
    steps:
      - {name: p1, type: test.probe}
      - {name: e1, type: test.effect}
      - {name: p2, type: test.probe}
      - name: shape
        type: step.set
        config:
          values: {label: "order-{{ .id }}"}
      - {name: p3, type: test.probe}
      - name: pick
        type: step.jq
        config: {expression: "{picked: .label}"}
      - {name: e2, type: test.effect}
      - {name: p4, type: test.probe}
"""

TYPES = StepRegistry(parent=default_registry)


def record(line: str) -> None:
    with open(os.environ["EFFECTS"], "a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


async def _probe(ctx: PipelineContext) -> dict[str, Any]:
    record(f"start:{ctx.step}")
    if os.environ.get("TREADLE_BLOCK") == ctx.step:
        await asyncio.Event().wait()
    record(f"done:{ctx.step}")
    return {ctx.step: True}


@TYPES.register("test.probe", schema={"type": "object"}, doc="A pure probe.", pure=True)
async def probe(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    return await _probe(ctx)


@TYPES.register("test.effect", schema={"type": "object"}, doc="A step with an effect.")
async def effect(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    return await _probe(ctx)


def engine(store: str) -> treadle.Engine:
    eng = treadle.Engine(store, lease_seconds=1.0, registry=treadle.Registry())
    load_application(load_config_text(APP), registry=eng.registry, step_types=TYPES)
    return eng


async def start(store: str) -> None:
    eng = engine(store)
    handle = await eng.start("pipeline:mixed", {"id": 7})
    print(handle.id, flush=True)
    await handle.result()


async def recover(store: str) -> None:
    eng = engine(store)
    deadline = time.monotonic() + 10
    handles: list[treadle.Handle] = []
    while not handles and time.monotonic() < deadline:
        handles = await eng.recover()  # the dead owner's lease lapses within a second
        if not handles:
            await asyncio.sleep(0.05)
    results = {h.id: await h.result(timeout=20) for h in handles}
    print(json.dumps(results), flush=True)
    await eng.close()


if __name__ == "__main__":
    command, store, effects = sys.argv[1:4]
    os.environ["EFFECTS"] = effects
    asyncio.run(start(store) if command == "start" else recover(store))
