"""Every YAML application under examples/apps/ is complete and works as its docs say.

For each folder: `app.yaml` validates with no error, its `<name>_test.yaml` passes under
`treadle test` (a subprocess, as a user runs it), and the application answers real requests
on a real uvicorn server on 127.0.0.1 (a free port). A new example cannot skip any of this:
the folder list is read from disk, and a folder without both files, a smoke test below or a
section in docs/examples.md fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import treadle
from treadle.apps import AppRuntime, asgi_app, build_app
from treadle.config.validate import validate_report

ROOT = Path(__file__).parents[2]
APPS = ROOT / "examples" / "apps"
DOCS = ROOT / "docs" / "examples.md"
NAMES = sorted(p.name for p in APPS.iterdir() if p.is_dir() and not p.name.startswith("."))

WEBHOOK_SECRET = "example-webhook-secret"  # webhook-intake's default secret, which tests sign with
_DB_VARS = ("BOOKS_DB", "WEBHOOK_DB", "SAGA_DB", "CRM_DB", "ANALYTICS_DB", "CATALOG_DB", "PORT")


def _env() -> dict[str, str]:
    """Environment of the examples under test: default secrets, databases in memory."""
    env = {k: v for k, v in os.environ.items()
           if k not in (*_DB_VARS, "WEBHOOK_SECRET") and not k.startswith("TREADLE_")}
    env.update(NO_COLOR="1")
    return env


@pytest.fixture
def example_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*_DB_VARS, "WEBHOOK_SECRET"):
        monkeypatch.delenv(var, raising=False)


# -- completeness -------------------------------------------------------------------------------


def test_there_are_at_least_eight_examples() -> None:
    assert len(NAMES) >= 8, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_example_has_an_app_a_test_file_and_docs(name: str) -> None:
    folder = APPS / name
    assert (folder / "app.yaml").is_file(), f"{name}: no app.yaml"
    assert (folder / f"{name}_test.yaml").is_file(), f"{name}: no {name}_test.yaml"
    assert sorted(p.name for p in folder.glob("*_test.yaml")) == [f"{name}_test.yaml"]
    assert name in SMOKE, f"{name}: no smoke test in {Path(__file__).name}"
    docs = DOCS.read_text()
    assert f"\n## {name}\n" in docs, f"{name}: no '## {name}' section in docs/examples.md"
    assert f"treadle serve examples/apps/{name}/app.yaml" in docs


def _address(name: str) -> tuple[str, int] | None:
    """The default address of the example's http.server (None without one)."""
    from treadle.config import load_config

    config = load_config(APPS / name / "app.yaml", env={})
    servers = [m for m in config.modules if m.type == "http.server"]
    if not servers:
        return None
    host, _, port = str(servers[0].config["address"]).rpartition(":")
    return host, int(port)


def test_examples_listen_on_distinct_local_ports() -> None:
    addresses = [a for a in map(_address, NAMES) if a is not None]
    assert len(set(addresses)) == len(addresses), addresses
    assert all(host == "127.0.0.1" for host, _ in addresses)


# -- validation and the example's own tests -------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_validates_without_errors_or_warnings(name: str, example_env: None) -> None:
    report = validate_report(APPS / name / "app.yaml")
    assert [str(e) for e in report.errors] == []
    assert [str(w) for w in report.warnings] == []


@pytest.mark.parametrize("name", NAMES)
def test_its_test_file_passes_under_treadle_test(name: str, tmp_path: Path) -> None:
    path = APPS / name / f"{name}_test.yaml"
    out = subprocess.run([sys.executable, "-m", "treadle.cli", "test", "--json", str(path)],
                         capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    [report] = json.loads(out.stdout)
    assert report["error"] is None
    failing = [c for c in report["cases"] if not c["passed"]]
    assert failing == []
    assert report["passed"] >= 3, "cover the happy path and the failure paths"
    assert not any(c["notes"] for c in report["cases"]), "an unused mock or another note"


# -- serving: a real uvicorn on 127.0.0.1 ---------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(name: str, tmp_path: Path) -> AsyncIterator[tuple[AppRuntime, httpx.AsyncClient]]:
    """The example on an engine over SQLite, served by uvicorn on a free port, in this loop
    (so tests can reach the runtime: broker drain, scheduler tick)."""
    engine = treadle.Engine(f"sqlite:///{tmp_path}/runs.db", registry=treadle.Registry())
    runtime = build_app(APPS / name / "app.yaml", engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi_app(runtime), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    task = loop.create_task(server.serve(sockets=[sock]))
    deadline = loop.time() + 20
    while not server.started:  # readiness polling, bounded by a deadline
        if task.done():
            task.result()
        assert loop.time() < deadline, f"{name}: server did not start"
        await asyncio.sleep(0.005)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield runtime, client
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _execution(runtime: AppRuntime, response: httpx.Response) -> Any:
    return await runtime.engine.get(response.headers["x-treadle-execution-id"])


async def smoke_rest_crud(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    book = {"isbn": "978-0201633610", "title": "Design Patterns", "author": "Gamma",
            "year": 1994}
    created = await client.post("/books", json=book)
    assert created.status_code == 201
    assert created.headers["location"] == "/books/978-0201633610"
    assert created.json() == book
    assert (await client.post("/books", json=book)).status_code == 409
    assert (await client.get("/books/978-0201633610")).json() == book
    assert (await client.delete("/books/978-0201633610")).status_code == 204
    missing = await client.get("/books/978-0201633610")
    assert missing.status_code == 404
    assert missing.json() == {"error": "book not found", "isbn": "978-0201633610"}
    health = await client.get("/healthz")
    assert health.json()["checks"]["books-db"]["status"] == "healthy"


SERVED_SECRET = "served-3f9a7c"  # the smoke test serves with a real WEBHOOK_SECRET set


def _github_signature(body: bytes) -> str:
    return "sha256=" + hmac.new(SERVED_SECRET.encode(), body, hashlib.sha256).hexdigest()


async def smoke_webhook_intake(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    body = b'{"action":"opened","issue":{"number":7},"repository":{"full_name":"octo/hello"}}'
    headers = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "72d3162e",
               "Content-Type": "application/json"}
    signed = {**headers, "X-Hub-Signature-256": _github_signature(body)}
    accepted = await client.post("/webhooks/github", content=body, headers=signed)
    assert accepted.status_code == 202
    assert accepted.json() == {"received": True, "delivery": "72d3162e", "event": "issues"}
    forged = await client.post("/webhooks/github", content=body,
                               headers={**headers, "X-Hub-Signature-256": _github_signature(b"x")})
    assert forged.status_code == 401
    events = (await client.get("/webhooks/events")).json()
    assert events["count"] == 1 and events["events"][0]["repository"] == "octo/hello"
    # the journal records the secret's reference, never its value
    execution = await _execution(runtime, accepted)
    journal = json.dumps([s.input for s in execution.steps], default=str)
    assert SERVED_SECRET not in journal and "${WEBHOOK_SECRET" in journal


async def smoke_order_saga(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    ok = await client.post("/orders", json={"order_id": "o-1", "customer": "alice",
                                            "sku": "BOOK-1", "qty": 2, "country": "GB"})
    assert ok.status_code == 201
    assert ok.json() == {"order_id": "o-1", "status": "confirmed", "total": 40}
    failed = await client.post("/orders", json={"order_id": "o-2", "customer": "alice",
                                                "sku": "BOOK-1", "qty": 1, "country": "US"})
    assert failed.status_code == 422
    assert failed.json()["error"].endswith("(compensation executed)")
    execution = await _execution(runtime, failed)
    events = await runtime.engine.events(execution.id)
    [compensating] = [e for e in events if e.type == "saga.compensating"]
    assert compensating.data["steps"] == ["refund-wallet", "release-stock", "cancel-order",
                                          "audit-rollback", "log-rollback"]
    undone = [s.name for s in execution.steps if s.kind == "compensation"]
    assert undone == ["refund-wallet", "release-stock", "cancel-order"]
    order = (await client.get("/orders/o-2")).json()
    assert order["order"]["status"] == "cancelled"
    assert [e["entry"] for e in order["ledger"]] == ["reserve", "charge", "refund", "release",
                                                     "rolled back"]
    balances = {b["account"]: b["balance"] for b in (await client.get("/balances")).json()}
    assert balances == {"stock:BOOK-1": 3, "stock:LAMP-1": 1, "wallet:alice": 60,
                        "wallet:bob": 30}


async def smoke_event_pipeline(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    for email, plan in (("bo@example.com", "free"), ("Ann@Example.com", "pro")):
        accepted = await client.post("/signups", json={"email": email, "plan": plan,
                                                       "company": "Acme"})
        assert accepted.status_code == 202 and accepted.json()["topic"] == "user-events"
    await runtime.modules["event-broker"].drain()
    started = [h for _, sub in runtime.subscriptions for h in sub.handles]
    assert len(started) == 3  # two welcome emails, one lead: the free plan is filtered out
    for handle in started:
        await handle.result(10)
    outbox = (await client.get("/outbox")).json()
    assert [m["subject"] for m in outbox["emails"]] == [
        "Welcome to Treadle Pro, ann@example.com!", "Welcome to Treadle, bo@example.com!"]
    leads = (await client.get("/leads")).json()
    assert [(lead["email"], lead["plan"]) for lead in leads["leads"]] == [
        ("ann@example.com", "pro")]


async def smoke_scheduled_job(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    for path, at in (("/home", "2024-05-01T09:00:00Z"), ("/home", "2024-05-01T09:30:00Z"),
                     ("/pricing", "2024-05-01T09:45:00Z")):
        recorded = await client.post("/views", json={"path": path, "viewed_at": at})
        assert recorded.status_code == 201
    # Fire the 5-minute rollup through its cron trigger with an explicit tick, at a slot the
    # scheduler's own clock loop cannot reach during the test (the nightly purge is parked).
    [(scheduler, rollup)] = [(s, j) for s, j in runtime.jobs
                             if j.spec.target.workflow == "pipeline:rollup-page-views"]
    [job] = [j for j in scheduler.jobs if j.callback is rollup]
    for other in scheduler.jobs:
        other.next_fire = None
    slot = datetime(2099, 1, 1, 0, 5, tzinfo=UTC)
    job.next_fire = slot
    fired = await scheduler.tick(slot)
    assert [(j.cron, when) for j, when in fired] == [("*/5 * * * *", slot)]
    output = await rollup.handles[-1].result(10)
    assert output["rolled_up"] == 3 and output["slot"] == "2099-01-01T00:05:00Z"
    assert (await client.get("/reports/daily")).json() == [
        {"day": "2024-05-01", "path": "/home", "views": 2},
        {"day": "2024-05-01", "path": "/pricing", "views": 1}]
    assert (await client.get("/jobs/runs")).json() == [
        {"slot": "2099-01-01T00:05:00Z", "rolled_up": 3}]
    purge = [j for s, j in runtime.jobs if j.spec.target.workflow == "pipeline:purge-page-views"]
    assert [(j.spec.cron, j.spec.timezone) for j in purge] == [("30 3 * * *", "Europe/London")]


async def smoke_order_lifecycle(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    created = await client.post("/orders", json={"order_id": "o-1", "customer": "ann",
                                                 "total": 40})
    assert created.status_code == 201 and created.json() == {"order_id": "o-1", "state": "new"}
    refused = await client.post("/orders/o-1/events/pay", json={"payment_ref": "cash",
                                                                "amount": 40})
    assert refused.status_code == 409 and "check-payment" in refused.json()["error"]
    paid = await client.post("/orders/o-1/events/pay", json={"payment_ref": "pay_1",
                                                             "amount": 40})
    assert paid.json() == {"order_id": "o-1", "event": "pay", "state": "paid"}
    # the engine's own HTTP binding, under its http_prefix
    moved = await client.post("/sm/orders/instances/o-1/transition", json={"transition": "pack"})
    assert moved.status_code == 200
    history = (await client.get("/sm/orders/instances/o-1/history")).json()["history"]
    assert [(h["transition"], h["toState"]) for h in history] == [
        ("", "new"), ("pay", "paid"), ("pack", "packed")]
    instance = (await client.get("/sm/orders/instances/o-1")).json()
    assert instance["currentState"] == "packed" and instance["availableTransitions"] == ["ship"]


async def smoke_jq_transform(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    batch = {"batch": {"batchRef": "B-17", "exportedAt": "2024-05-01T10:00:00Z"},
             "orders": [
                 {"id": "A1", "customer": "ann", "status": "paid",
                  "items": [{"sku": "BOOK", "qty": 2, "price": 12.5}]},
                 {"id": "A2", "customer": "bo", "status": "refunded",
                  "items": [{"sku": "LAMP", "qty": 1, "price": 40}]}]}
    summary = await client.post("/reports/orders", json=batch)
    assert summary.status_code == 200
    assert summary.json() == {
        "batch": {"batch_id": "B-17", "exported_at": "2024-05-01T10:00:00Z"},
        "headline": "1 paid orders, 25 revenue", "top_customer": "ann", "paid": 1,
        "skipped": 1, "revenue": 25, "customers": [{"customer": "ann", "orders": 1, "total": 25}],
        "units_per_sku": {"BOOK": 2}}
    bad = await client.post("/reports/orders", json={"orders": []})
    assert bad.status_code == 422


async def smoke_fan_out(runtime: AppRuntime, client: httpx.AsyncClient) -> None:
    products = [{"sku": f"BK-{i}", "name": f"Book {i}", "category": "books", "stock": i,
                 "price": 10} for i in range(1, 9)]
    products.insert(3, {"sku": "bad", "name": "x", "category": "books", "stock": 1, "price": 1})
    imported = await client.post("/imports", json={"products": products})
    assert imported.status_code == 200
    body = imported.json()
    assert body["imported"] == 8
    assert [f["index"] for f in body["failed"]] == [3]
    assert body["catalog"]["totals"] == {"products": 8, "units": 36, "stock_value": 360.0}
    execution = await _execution(runtime, imported)
    names = [s.name for s in execution.steps]
    assert [f"import-products[{i}]" for i in range(9)] == [n for n in names if "[" in n]
    assert {"catalog-stats.totals", "catalog-stats.low-stock", "catalog-stats.categories"} <= set(
        names)
    listed = (await client.get("/products", params={"category": "books"})).json()
    assert listed["count"] == 8


SMOKE: dict[str, Callable[[AppRuntime, httpx.AsyncClient], Awaitable[None]]] = {
    "rest-crud": smoke_rest_crud,
    "webhook-intake": smoke_webhook_intake,
    "order-saga": smoke_order_saga,
    "event-pipeline": smoke_event_pipeline,
    "scheduled-job": smoke_scheduled_job,
    "order-lifecycle": smoke_order_lifecycle,
    "jq-transform": smoke_jq_transform,
    "fan-out": smoke_fan_out,
}


@pytest.mark.parametrize("name", NAMES)
async def test_serves_real_requests(name: str, tmp_path: Path, example_env: None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", SERVED_SECRET)
    async with serve(name, tmp_path) as (runtime, client):
        await SMOKE[name](runtime, client)


# -- the documented command ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_treadle_serve_runs_an_example(tmp_path: Path) -> None:
    """`treadle serve examples/apps/rest-crud/app.yaml` as the docs show (another port)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "treadle.cli", "serve", str(APPS / "rest-crud" / "app.yaml"),
         "--port", str(port), "--store", f"sqlite:///{tmp_path}/served.db"],
        cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # readiness of another process, polled with a deadline
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "treadle serve did not answer in 30s"
            time.sleep(0.05)
        created = httpx.post(base + "/books", json={"isbn": "978-0131103627",
                                                    "title": "The C Programming Language",
                                                    "author": "Kernighan"})
        assert created.status_code == 201
        assert httpx.get(base + "/books").json()["count"] == 1
        assert httpx.get(base + "/books/0").status_code == 404
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
