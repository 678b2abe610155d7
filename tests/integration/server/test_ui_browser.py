"""The web UI in a real browser: Debian's Chromium driven by Playwright, against a real server
on 127.0.0.1. Each test does what a user does (types a key, clicks, reads the page) and checks
the result through the API as well.

Needs /usr/bin/chromium (`apt-get install chromium`; `make test` installs it) and Playwright
for Python (the `dev` extra). Without them these tests skip, or fail under
`TREADLE_REQUIRE_SERVICES=1` (CI).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import treadle

from .conftest import Server, finished, start, start_server, wait_for
from .tenancykit import World, build_world
from .workflows import hello

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = "/usr/bin/chromium"
KEY = "ui-browser-key-0123456789"
WAIT_MS = 20_000  # generous: CI has two cores and runs a browser beside the server
if sync_playwright is not None:
    expect.set_options(timeout=WAIT_MS)

UI = treadle.Registry()


@treadle.workflow(name="greet", registry=UI)
async def greet(ctx: treadle.Context, name: str) -> dict[str, str]:
    greeting: dict[str, str] = await hello(name)
    return greeting


@treadle.workflow(name="hold", registry=UI)
async def hold(ctx: treadle.Context, name: str) -> Any:
    return await ctx.wait_for_signal("go")


@treadle.step
async def fail_on(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("fail"):
        raise ValueError(f"refused {data.get('note', '')}")
    return data


@treadle.workflow(name="picky", registry=UI, dead_letter=True)
async def picky(ctx: treadle.Context, data: dict[str, Any]) -> dict[str, Any]:
    return await fail_on(data)


def _require_browser() -> None:
    missing = []
    if sync_playwright is None:
        missing.append("playwright (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if not missing:
        return
    message = "browser tests need " + " and ".join(missing)
    if os.environ.get("TREADLE_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    _require_browser()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("ui-browser")
    server = start_server(treadle.Engine(f"sqlite:///{folder}/ui.db", registry=UI),
                          api_keys=[KEY])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(served: Server) -> Iterator[Any]:
    with served.client(Authorization=f"Bearer {KEY}") as client:
        yield client


def open_ui(browser: Browser, url: str, key: str | None) -> tuple[Page, list[str]]:
    """A fresh tab on the UI, logged in with `key` as a user does (paste, Use); and the list
    the page's script errors and console errors go to."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}")
            if msg.type == "error" and not msg.text.startswith("Failed to load") else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.request.method} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(f"{url}/ui/")
    expect(page.locator("#who")).to_have_text("not signed in")
    if key is not None:
        page.fill("#token", key)
        page.click("#auth button[type=submit]")
        expect(page.locator("#who")).not_to_have_text(re.compile("not signed in|^$"))
        expect(page.locator("#token")).to_have_value("")  # the field does not keep the key
        problems.clear()  # the calls refused before the key was given
    return page, problems


@pytest.fixture
def page(browser: Browser, served: Server) -> Iterator[Page]:
    tab, problems = open_ui(browser, served.url, KEY)
    yield tab
    tab.context.close()
    assert problems == [], "\n".join(problems)


def view(page: Page) -> Any:
    return page.locator("#view")


def go(page: Page, hash_: str) -> None:
    page.evaluate("hash => { location.hash = hash; }", hash_)


def row(page: Page, text: str) -> Any:
    return view(page).locator("tbody tr", has_text=text)


def step_row(page: Page, name: str) -> Any:
    """A step's row in the timeline (not the details under it, which may name it too)."""
    return view(page).locator("tbody tr").filter(
        has=page.locator("td", has_text=re.compile(f"^{re.escape(name)}$")))


def test_logging_in_shows_the_executions(browser: Browser, served: Server, api: Any) -> None:
    ann = start(api, "greet", "ann")
    finished(api, ann)
    tab, problems = open_ui(browser, served.url, None)
    expect(view(tab)).to_contain_text("401")  # nothing shows without a key
    expect(tab.locator("#view tbody tr")).to_have_count(0)
    tab.fill("#token", KEY)
    tab.click("#auth button[type=submit]")
    expect(tab.locator("#who")).to_contain_text("admin")
    listed = row(tab, ann)
    expect(listed).to_contain_text("greet")
    expect(listed).to_contain_text("completed")
    assert tab.evaluate("() => sessionStorage.getItem('treadle.token')") == KEY
    tab.click("#forget")  # forgetting the key hides the data again
    expect(tab.locator("#who")).to_have_text("not signed in")
    expect(row(tab, ann)).to_have_count(0)
    tab.context.close()
    assert problems and all(p.startswith("401 GET") for p in problems), problems


def test_the_list_filters_and_opens_a_timeline(page: Page, api: Any) -> None:
    ann = start(api, "greet", "ann")
    failed = start(api, "picky", {"fail": True, "note": "filter"})
    finished(api, ann), finished(api, failed)
    go(page, "#/executions")
    expect(row(page, failed)).to_contain_text("refused filter")
    view(page).locator("select").select_option("failed")
    view(page).get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"#/executions\?status=failed$"))
    expect(row(page, failed)).to_be_visible()
    expect(row(page, ann)).to_have_count(0)
    go(page, "#/executions")
    row(page, ann).get_by_role("link").click()
    expect(page).to_have_url(re.compile(f"#/execution/{ann}$"))
    expect(view(page).locator("h2")).to_have_text("greet completed")
    step = step_row(page, "hello")
    expect(step).to_contain_text("completed")
    step.click()  # a step's input and output open under it
    expect(view(page)).to_contain_text('"greeting": "hello ann"')
    expect(view(page).get_by_role("button", name="Cancel")).to_have_count(0)
    expect(view(page).get_by_role("button", name="Retry")).to_have_count(0)


def test_cancel_then_retry(page: Page, api: Any) -> None:
    held = start(api, "hold", "cat")
    wait_for(lambda: api.get(f"/api/v1/executions/{held}").json()["status"] == "suspended",
             20, "the execution to wait for its signal")
    go(page, f"#/execution/{held}")
    expect(view(page).locator("h2")).to_have_text("hold suspended")
    view(page).get_by_role("button", name="Cancel").click()
    expect(view(page).locator("h2")).to_have_text("hold cancelled")
    assert api.get(f"/api/v1/executions/{held}").json()["status"] == "cancelled"
    view(page).get_by_role("button", name="Retry").click()
    expect(page).not_to_have_url(re.compile(f"#/execution/{held}$"))
    retried = page.url.rsplit("/", 1)[-1]
    expect(view(page)).to_contain_text(retried)
    expect(view(page).locator("h2")).to_contain_text("hold")
    again = api.get(f"/api/v1/executions/{retried}").json()
    assert again["workflow"] == "hold" and again["input"] == held_input(api, held)
    api.post(f"/api/v1/executions/{retried}/cancel", json={})


def held_input(api: Any, execution_id: str) -> Any:
    return api.get(f"/api/v1/executions/{execution_id}").json()["input"]


def test_replay_exact_and_modified(page: Page, api: Any) -> None:
    dan = start(api, "greet", "dan")
    finished(api, dan)
    go(page, f"#/execution/{dan}")
    replay = view(page).locator(".card", has_text="Replay")
    replay.get_by_role("button", name="Replay").click()
    expect(page).not_to_have_url(re.compile(f"#/execution/{dan}$"))
    exact = page.url.rsplit("/", 1)[-1]
    assert finished(api, exact)["output"] == {"greeting": "hello dan"}
    expect(view(page)).to_contain_text(exact)

    refused = start(api, "picky", {"fail": True, "note": "typo"})
    assert finished(api, refused)["status"] == "failed"
    go(page, f"#/execution/{refused}")
    expect(view(page).locator("h2")).to_have_text("picky failed")
    step_row(page, "fail_on").click()  # its error, with a long traceback, fits the window
    expect(view(page)).to_contain_text("Traceback")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    replay = view(page).locator(".card", has_text="Replay")
    replay.locator("select").first.select_option("modified")
    replay.locator("textarea").fill('{"fail": false}')  # deep-merged into the input
    replay.get_by_role("button", name="Replay").click()
    expect(page).not_to_have_url(re.compile(f"#/execution/({refused}|{exact})$"))
    modified = page.url.rsplit("/", 1)[-1]
    done = finished(api, modified)
    assert done["status"] == "completed" and done["output"] == {"fail": False, "note": "typo"}
    assert done["metadata"]["replay_of"] == refused

    replay = view(page).locator(".card", has_text="Replay")
    replay.locator("select").first.select_option("modified")
    replay.locator("textarea").fill("{not json")
    replay.get_by_role("button", name="Replay").click()
    expect(page.locator("#toast")).to_contain_text("modifications is not JSON")
    assert page.url.endswith(modified)


def test_a_live_update_arrives_without_reloading(page: Page, api: Any) -> None:
    go(page, "#/live")
    expect(view(page).locator("#live-state")).to_have_text("following")
    page.evaluate("() => { window.__loaded = true; }")  # gone if the page reloads
    eve = start(api, "greet", "eve")  # started after the page subscribed
    finished(api, eve)
    events = view(page).locator("tbody tr", has_text=eve)
    expect(events.filter(has_text="execution.completed")).to_have_count(1)
    expect(events.filter(has_text="step.completed")).to_contain_text("hello")
    assert page.evaluate("() => window.__loaded") is True
    events.filter(has_text="execution.started").get_by_role("link").click()
    expect(view(page).locator("h2")).to_have_text("greet completed")


def test_the_breakpoint_panel_resumes_with_an_edited_input(page: Page, api: Any) -> None:
    made = api.post("/api/v1/pipelines/greet/breakpoints", json={"step": "hello"})
    assert made.status_code == 201, made.text
    try:
        bob = start(api, "greet", "bob")
        wait_for(lambda: api.get(f"/api/v1/executions/{bob}/breakpoint").json()["paused"],
                 20, "bob to pause")
    finally:
        api.delete(f"/api/v1/pipelines/greet/breakpoints/{made.json()['id']}")
    go(page, f"#/execution/{bob}")
    panel = view(page).locator(".card", has_text="Paused before step hello")
    expect(panel).to_be_visible()
    field = panel.locator("textarea").first
    assert '"bob"' in field.input_value()
    field.fill(field.input_value().replace('"bob"', '"carol"'))
    panel.get_by_role("button", name="Resume").click()
    expect(view(page).locator("h2")).to_have_text("greet completed")
    expect(view(page).locator(".card", has_text="Paused")).to_have_count(0)
    assert finished(api, bob)["output"] == {"greeting": "hello carol"}


def test_dead_letters_replay_and_discard(page: Page, api: Any) -> None:
    kept = start(api, "picky", {"fail": True, "note": "kept"})
    dropped = start(api, "picky", {"fail": True, "note": "dropped"})
    for ident in (kept, dropped):
        assert finished(api, ident)["status"] == "failed"
    go(page, "#/dlq")
    view(page).get_by_placeholder("pipeline").fill("picky")
    view(page).get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"#/dlq\?pipeline=picky$"))
    expect(row(page, kept)).to_contain_text("refused kept")
    expect(row(page, kept)).to_contain_text("fail_on")
    row(page, dropped).get_by_role("button", name="Discard").click()
    expect(row(page, dropped)).to_have_count(0)
    assert api.get(f"/api/v1/dlq/pipelines/picky/{dropped}").status_code == 404
    depth = api.get("/api/v1/dlq/pipelines/picky").json()["depth"]
    expect(view(page)).to_contain_text(f"{depth} waiting")
    row(page, kept).get_by_role("button", name="Replay").click()
    expect(row(page, kept)).to_have_count(0)
    assert api.get(f"/api/v1/dlq/pipelines/picky/{kept}").status_code == 404

    def letters() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api.get("/api/v1/dlq/pipelines/picky").json()["messages"]
        return found

    # the replay fails again (same input), into the queue: Show lists its new letter
    again = wait_for(lambda: [m["id"] for m in letters()
                              if m["trigger_data"] == [{"fail": True, "note": "kept"}]],
                     20, "the replay's letter")
    view(page).get_by_role("button", name="Show").click()
    expect(row(page, again[0])).to_contain_text("refused kept")
    expect(view(page)).to_contain_text(f"{depth} waiting")


def test_the_dashboard(page: Page, api: Any) -> None:
    for name in ("fay", "gus"):
        finished(api, start(api, "greet", name))
    expected = api.get("/api/v1/dashboard/metrics", params={"pipeline": "greet"}).json()
    go(page, "#/dashboard")
    view(page).get_by_placeholder("pipeline (all)").fill("greet")
    view(page).get_by_role("button", name="Show").click()
    card = view(page).locator(".card")
    expect(card).to_contain_text(f"{expected['summary']['total_executions']} executions")
    expect(card).to_contain_text("% success")
    expect(step_row(page, "hello")).to_be_visible()


def test_the_diff_of_two_executions(page: Page, api: Any) -> None:
    left, right = start(api, "greet", "hal"), start(api, "greet", "ida")
    finished(api, left), finished(api, right)
    go(page, f"#/execution/{left}")
    view(page).get_by_role("link", name="Diff with…").click()
    expect(view(page).get_by_placeholder("left execution")).to_have_value(left)
    view(page).get_by_placeholder("right execution").fill(right)
    view(page).get_by_role("button", name="Compare").click()
    expect(view(page)).to_contain_text("output_different")
    changed = step_row(page, "hello")
    expect(changed).to_contain_text("hello hal")
    expect(changed).to_contain_text("hello ida")


HOSTILE = ("<script>window.__pwned = 1</script><img src=x onerror=window.__pwned=2>"
           "<b id=injected>b</b>")


def test_execution_data_is_shown_as_text(page: Page, api: Any) -> None:
    """HTML in inputs, outputs and errors shows as the characters it is, on every page that
    shows them; nothing of it becomes an element or runs."""
    named = start(api, "greet", HOSTILE)
    failed = start(api, "picky", {"fail": True, "note": HOSTILE})
    finished(api, named), finished(api, failed)
    pages = [(f"#/execution/{named}", HOSTILE, "hello"), (f"#/execution/{failed}", HOSTILE, None),
             ("#/executions", "refused " + HOSTILE, None),
             ("#/dlq?pipeline=picky", "refused " + HOSTILE, None),
             (f"#/diff?left={named}&right={failed}", HOSTILE, None)]
    for hash_, shown, step in pages:
        go(page, hash_)
        if step:
            step_row(page, step).click()
        expect(view(page)).to_contain_text(shown)
        assert page.locator("#view script, #view img, #injected").count() == 0, hash_
    go(page, "#/live")
    expect(view(page).locator("#live-state")).to_have_text("following")
    finished(api, start(api, "greet", HOSTILE))
    expect(view(page).locator("tbody tr", has_text="execution.started").first).to_be_visible()
    expect(view(page)).to_contain_text("hello " + HOSTILE)
    assert page.locator("#view script, #view img, #injected").count() == 0
    assert page.evaluate("() => window.__pwned") is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from build_world(tmp_path_factory.mktemp("ui-tenants"))


def test_a_tenants_key_shows_only_its_executions(browser: Browser, world: World) -> None:
    tab, problems = open_ui(browser, world.server.url, world.b.keys["viewer"].key)
    expect(tab.locator("#who")).to_contain_text("tenant-b")
    expect(row(tab, world.b.execution)).to_contain_text("completed")
    expect(row(tab, world.b.failed_execution)).to_contain_text("failed")
    expect(tab.locator("#view tbody tr")).to_have_count(2)
    text = view(tab).inner_text()
    for marker in (world.a.execution, world.a.failed_execution, "tenant-a"):
        assert marker not in text
    go(tab, f"#/execution/{world.a.execution}")  # a link to the other tenant's execution
    expect(view(tab)).to_contain_text("404")
    expect(view(tab).locator("h2, table")).to_have_count(0)  # nothing of it is shown
    go(tab, "#/dlq?pipeline=doomed")
    expect(view(tab)).to_contain_text("1 waiting")
    expect(row(tab, world.b.failed_execution)).to_be_visible()
    expect(row(tab, world.a.failed_execution)).to_have_count(0)
    tab.context.close()
    assert [p for p in problems if not p.startswith("404 GET")] == [], problems
