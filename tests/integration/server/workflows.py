"""Small workflows the server tests run, in their own registry."""

from __future__ import annotations

from typing import Any

import treadle

REGISTRY = treadle.Registry()


@treadle.step
async def hello(name: str) -> dict[str, str]:
    return {"greeting": f"hello {name}"}


@treadle.workflow(name="greet", registry=REGISTRY)
async def greet(ctx: treadle.Context, name: str) -> dict[str, str]:
    greeting: dict[str, str] = await hello(name)
    return greeting


@treadle.step
async def validate(order: dict[str, Any]) -> dict[str, Any]:
    return {"valid": True, "items": len(order.get("items", []))}


@treadle.step
async def check_inventory(order: dict[str, Any]) -> dict[str, Any]:
    if order.get("sku") == "SKU-999":
        return {"available": False, "reason": "out_of_stock"}
    return {"available": True, "warehouse": "us-east-1"}


@treadle.step
async def charge(order: dict[str, Any]) -> dict[str, Any]:
    if order.get("card") == "declined":
        raise ValueError("card declined")
    return {"charge_id": f"ch_{order.get('id')}", "status": "succeeded"}


@treadle.workflow(name="order", registry=REGISTRY)
async def order(ctx: treadle.Context, data: dict[str, Any]) -> dict[str, Any]:
    await validate(data)
    stock = await check_inventory(data)
    if not stock["available"]:
        return {"ok": False, "reason": stock["reason"]}
    receipt = await charge(data)
    return {"ok": True, "charge": receipt["charge_id"]}


@treadle.workflow(name="approval", registry=REGISTRY)
async def approval(ctx: treadle.Context, request: dict[str, Any]) -> dict[str, Any]:
    checked = await validate(request)
    decision = await ctx.wait_for_signal("approve")
    return {"checked": checked, "decision": decision}


@treadle.step
def add_one(x: int) -> int:
    return x + 1


@treadle.workflow(name="fifty", registry=REGISTRY)
async def fifty(ctx: treadle.Context, start: int) -> int:
    x = start
    for _ in range(50):
        x = await add_one(x)
    return x


@treadle.workflow(name="pair", registry=REGISTRY)
async def pair(ctx: treadle.Context, a: int, b: int) -> int:
    total: int = await add_one(a + b)
    return total


@treadle.step
def odd_text() -> dict[str, str]:
    return {"text": "lone \ud800 surrogate"}  # Python strings may hold what UTF-8 cannot


@treadle.workflow(name="odd", registry=REGISTRY)
async def odd(ctx: treadle.Context) -> dict[str, str]:
    out: dict[str, str] = await odd_text()
    return out
