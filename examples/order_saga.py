"""An order saga: reserve stock, charge the card, ship — and undo what was done on failure.

    python examples/order_saga.py [STORE_URL]
"""

from __future__ import annotations

import sys
from typing import Any

import treadle

ledger: list[str] = []


@treadle.step
async def release_stock(reservation: dict[str, Any], order: dict[str, Any]) -> None:
    ledger.append(f"released {reservation['sku']} x{reservation['qty']}")


@treadle.step(compensate=release_stock)
async def reserve_stock(order: dict[str, Any]) -> dict[str, Any]:
    ledger.append(f"reserved {order['sku']} x{order['qty']}")
    return {"sku": order["sku"], "qty": order["qty"]}


@treadle.step
async def refund(charge: dict[str, Any], order: dict[str, Any]) -> None:
    ledger.append(f"refunded {charge['charge_id']}")


@treadle.step(compensate=refund, retries=3, initial_delay=0.01)
async def charge_card(order: dict[str, Any]) -> dict[str, Any]:
    ledger.append(f"charged {order['total']}")
    return {"charge_id": f"ch_{order['id']}", "amount": order["total"]}


@treadle.step
async def ship(order: dict[str, Any]) -> dict[str, Any]:
    if order.get("address") is None:
        raise ValueError("no shipping address")
    return {"tracking": f"TRK-{order['id']}"}


@treadle.workflow(name="order-saga")
async def order_saga(ctx: treadle.Context, order: dict[str, Any]) -> dict[str, Any]:
    await reserve_stock(order)
    charge = await charge_card(order)
    shipment = await ship(order)
    return {"charge": charge["charge_id"], "tracking": shipment["tracking"]}


def main(store: str = "memory://") -> None:
    engine = treadle.Engine(store)
    good = {"id": 1, "sku": "BOOK", "qty": 2, "total": 30, "address": "1 Main St"}
    print("shipped:", engine.run(order_saga, good))
    ledger.clear()
    try:
        engine.run(order_saga, {**good, "id": 2, "address": None})
    except treadle.ExecutionFailedError as exc:
        print("failed:", exc.error["message"], "| compensations:", ledger[2:])


if __name__ == "__main__":
    main(*sys.argv[1:])
