"""Parallel fan-out and fan-in, a child workflow, and a durable timer.

    python examples/fan_out.py [STORE_URL]
"""

from __future__ import annotations

import sys

import treadle


@treadle.step(retries=2)
async def fetch_price(sku: str) -> float:
    return {"apple": 0.5, "pear": 0.75, "fig": 1.25}.get(sku, 1.0)


@treadle.workflow(name="price-basket")
async def price_basket(ctx: treadle.Context, basket: dict[str, int]) -> float:
    prices = await ctx.gather(*(fetch_price(sku) for sku in basket))
    return sum(p * q for p, q in zip(prices, basket.values(), strict=True))


@treadle.workflow(name="nightly-report")
async def nightly_report(ctx: treadle.Context, baskets: list[dict[str, int]]) -> dict[str, float]:
    totals = await ctx.gather(*(ctx.run_child(price_basket, b) for b in baskets))
    await ctx.sleep(0.05)  # a durable timer: survives a restart, keeps its deadline
    return {"baskets": len(totals), "revenue": sum(totals)}


def main(store: str = "memory://") -> None:
    engine = treadle.Engine(store)
    baskets = [{"apple": 4, "pear": 2}, {"fig": 3}, {"apple": 1, "fig": 1, "kiwi": 2}]
    print("report:", engine.run(nightly_report, baskets))


if __name__ == "__main__":
    main(*sys.argv[1:])
