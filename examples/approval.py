"""Human approval: a workflow waits (durably) for a signal, with a timeout.

    python examples/approval.py [STORE_URL]
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import treadle


@treadle.step
async def submit(expense: dict[str, Any]) -> str:
    return f"expense {expense['id']} for {expense['amount']} submitted"


@treadle.step
async def pay(expense: dict[str, Any], approver: str) -> str:
    return f"paid {expense['amount']} (approved by {approver})"


@treadle.workflow(name="expense-approval")
async def expense_approval(ctx: treadle.Context, expense: dict[str, Any]) -> str:
    await submit(expense)
    if expense["amount"] <= 100:
        return await pay(expense, "auto")
    try:
        decision = await ctx.wait_for_signal("decision", timeout=3 * 86400)
    except treadle.SignalTimeoutError:
        return "expired without a decision"
    if not decision["approved"]:
        return f"rejected by {decision['by']}"
    return await pay(expense, decision["by"])


async def demo(store: str) -> None:
    async with treadle.Engine(store) as engine:
        print(await (await engine.start(expense_approval, {"id": 1, "amount": 40})).result())
        big = await engine.start(expense_approval, {"id": 2, "amount": 900})
        while (await engine.get(big.id)).status != treadle.ExecutionStatus.SUSPENDED:
            await asyncio.sleep(0.01)
        print("waiting for a decision:", (await engine.get(big.id)).status)
        await engine.signal(big.id, "decision", {"approved": True, "by": "ann"})
        print(await big.result())


def main(store: str = "memory://") -> None:
    asyncio.run(demo(store))


if __name__ == "__main__":
    main(*sys.argv[1:])
