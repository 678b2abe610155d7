"""HTTP steps, step.http_call against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

import treadle
from pipekit import LoadApp
from treadle.steps.http import reset_breakers


class Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    counters: ClassVar[dict[str, int]] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        Handler.seen.append({"method": self.command, "path": self.path,
                             "headers": dict(self.headers), "body": body})
        Handler.counters[self.path] = Handler.counters.get(self.path, 0) + 1
        if self.path.startswith("/status/"):
            code = int(self.path.split("/")[2])
            self._send(code, {"code": code})
        elif self.path.startswith("/flaky"):
            ok = Handler.counters[self.path] > 2
            self._send(200 if ok else 503, {"ok": ok})
        elif self.path == "/slow":
            time.sleep(0.5)
            try:
                self._send(200, {})
            except OSError:
                pass  # the client gave up
        elif self.path == "/text":
            raw = b"plain words"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        else:
            self._send(200, {"method": self.command, "path": self.path,
                             "json": json.loads(body) if body else None})

    def _send(self, code: int, payload: Any) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Served-By", "test")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


@pytest.fixture
def server() -> Iterator[str]:
    Handler.seen, Handler.counters = [], {}
    reset_breakers()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()
    reset_breakers()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def app_with(load_app: LoadApp, steps: str, **kw: Any) -> Any:
    return load_app("pipelines:\n  p:\n    steps:\n" + steps, **kw)


async def test_get_with_templates_and_headers(load_app: LoadApp, engine: treadle.Engine,
                                              server: str) -> None:
    app = app_with(load_app, f"""
      - name: fetch
        type: step.http_call
        config:
          url: "{server}/orders/{{{{ .id }}}}"
          headers: {{X-Trace: "t-{{{{ .id }}}}"}}
          auth: {{type: bearer, token: secret}}
    """)
    _, out = await app.run_pipeline(engine, "p", {"id": 42})
    assert out["status_code"] == 200 and out["status"] == "200 OK"
    assert out["body"] == {"method": "GET", "path": "/orders/42", "json": None}
    assert out["headers"]["X-Served-By"] == "test"
    sent = Handler.seen[0]["headers"]
    assert sent["X-Trace"] == "t-42" and sent["Authorization"] == "Bearer secret"


async def test_post_bodies(load_app: LoadApp, engine: treadle.Engine, server: str) -> None:
    app = app_with(load_app, f"""
      - name: explicit
        type: step.http_call
        config: {{url: "{server}/a", method: POST, body: {{n: "{{{{ .n }}}}"}}}}
      - name: from-path
        type: step.http_call
        config: {{url: "{server}/b", method: PUT, body_from: steps.explicit.body.json}}
      - name: whole-context
        type: step.http_call
        config: {{url: "{server}/c", method: POST}}
      - name: text
        type: step.http_call
        config: {{url: "{server}/text"}}
    """)
    _, out = await app.run_pipeline(engine, "p", {"n": 5})
    assert [json.loads(s["body"]) if s["body"] else None for s in Handler.seen[:2]] == [
        {"n": 5}, {"n": 5}]
    assert json.loads(Handler.seen[2]["body"])["n"] == 5
    assert Handler.seen[0]["headers"]["Content-Type"] == "application/json"
    assert out["body"] == "plain words"


async def test_error_status_fails_unless_disabled(load_app: LoadApp, engine: treadle.Engine,
                                                  server: str) -> None:
    app = app_with(load_app, f"""
      - name: missing
        type: step.http_call
        retry: {{max_attempts: 3, initial_delay: 10ms}}
        config: {{url: "{server}/status/404"}}
    """)
    with pytest.raises(treadle.ExecutionFailedError, match="HTTP 404"):
        await app.run_pipeline(engine, "p", {})
    assert Handler.counters["/status/404"] == 1  # 4xx is not retried
    app = app_with(load_app, f"""
      - name: missing
        type: step.http_call
        config: {{url: "{server}/status/404", error_on_status: false}}
    """, name="two.yaml")
    _, out = await app.run_pipeline(engine, "p", {})
    assert out["status_code"] == 404 and out["body"] == {"code": 404}


async def test_5xx_is_retried_with_a_stable_idempotency_key(
        load_app: LoadApp, engine: treadle.Engine, server: str) -> None:
    app = app_with(load_app, f"""
      - name: charge
        type: step.http_call
        retry: {{max_attempts: 3, initial_delay: 10ms}}
        config:
          url: "{server}/flaky"
          method: POST
          body: {{}}
          idempotency_key: "charge-{{{{ .order }}}}"
      - name: auto-key
        type: step.http_call
        config: {{url: "{server}/plain", idempotent: true}}
    """)
    eid, _ = await app.run_pipeline(engine, "p", {"order": 9})
    assert Handler.counters["/flaky"] == 3
    keys = {s["headers"]["Idempotency-Key"] for s in Handler.seen if s["path"] == "/flaky"}
    assert keys == {"charge-9"}
    pos = next(s.pos for s in (await engine.get(eid)).steps if s.name == "auto-key")
    assert Handler.seen[-1]["headers"]["Idempotency-Key"] == f"{eid}:{pos}"
    retries = [e for e in await engine.events(eid) if e.type == "retry.attempted"]
    assert len(retries) == 2


async def test_timeout(load_app: LoadApp, engine: treadle.Engine, server: str) -> None:
    app = app_with(load_app, f"""
      - name: slow
        type: step.http_call
        config: {{url: "{server}/slow", timeout: 100ms}}
    """)
    started = time.monotonic()
    with pytest.raises(treadle.ExecutionFailedError, match="ReadTimeout"):
        await app.run_pipeline(engine, "p", {})
    assert time.monotonic() - started < 0.9


async def test_circuit_breaker_opens_per_host(load_app: LoadApp, engine: treadle.Engine,
                                              server: str) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    app = app_with(load_app, f"""
      - name: call
        type: step.http_call
        on_error: continue
        config:
          url: "{dead}/x"
          circuit_breaker: {{failure_threshold: 2, timeout: 1h}}
    """)
    errors = []
    for _ in range(3):
        eid, _ = await app.run_pipeline(engine, "p", {})
        errors.append((await engine.get(eid)).steps[0].error["type"])  # type: ignore[index]
    assert errors == ["ConnectionError", "ConnectionError",
                      "treadle.steps.errors.CircuitOpenError"]
    app = app_with(load_app, f"""
      - name: call
        type: step.http_call
        config:
          url: "{dead}/y"
          circuit_breaker:
            timeout: 1h
            fallback: {{type: static, response: {{status: 503, body: {{error: down}}}}}}
    """, name="fallback.yaml")
    _, out = await app.run_pipeline(engine, "p", {})
    assert out["fallback"] is True and out["body"] == {"error": "down"}
    app = app_with(load_app, f"""
      - name: other-host-fine
        type: step.http_call
        config: {{url: "{server}/ok"}}
    """, name="ok.yaml")
    _, out = await app.run_pipeline(engine, "p", {})
    assert out["status_code"] == 200


REQUEST = {"method": "POST", "path": "/orders/12/items/7", "route_pattern":
           "/orders/{id}/items/{item}", "query": {"expand": ["yes"], "q": "x"},
           "headers": {"Content-Type": "application/x-www-form-urlencoded",
                       "X-Request-Id": "r1"},
           "body": "a=1&b=2&b=3"}


async def test_request_parse(load_app: LoadApp, engine: treadle.Engine) -> None:
    app = app_with(load_app, """
      - name: parse-request
        type: step.request_parse
        config:
          path_params: [id, item, absent]
          query_params: [expand, q, none]
          headers: [x-request-id]
          parse_body: true
      - name: use
        type: step.set
        config: {values: {id: "{{ index .steps \\"parse-request\\" \\"path_params\\" \\"id\\" }}"}}
    """)
    _, out = await app.run_pipeline(engine, "p", {}, meta={"_http_request": REQUEST})
    assert out["path_params"] == {"id": "12", "item": "7"}
    assert out["query"] == {"expand": "yes", "q": "x"}
    assert out["headers"] == {"x-request-id": "r1"}
    assert out["body"] == {"a": "1", "b": ["2", "3"]} and out["id"] == "12"
    _, out = await app.run_pipeline(engine, "p", {"id": "5", "body": {"j": 1}})
    assert out["path_params"] == {"id": "5"} and out["body"] == {"j": 1}


async def test_json_response_headers_and_missing_body(load_app: LoadApp,
                                                      engine: treadle.Engine) -> None:
    app = app_with(load_app, """
      - name: respond
        type: step.json_response
        config: {status: 204, headers: {X-A: b}, body_from: steps.none.row}
    """)
    _, out = await app.run_pipeline(engine, "p", {})
    assert out["response_status"] == 204 and "body" not in out and out["response_body"] == ""
    assert out["response_headers"] == {"Content-Type": "application/json", "X-A": "b"}


def sign(secret: str, data: bytes, algo: Any = hashlib.sha256) -> str:
    return hmac.new(secret.encode(), data, algo).hexdigest()


@pytest.mark.parametrize("good", [True, False])
async def test_webhook_verify_providers(load_app: LoadApp, engine: treadle.Engine,
                                        good: bool) -> None:
    body = '{"event":"push"}'
    app = app_with(load_app, """
      - name: verify
        type: step.webhook_verify
        config: {provider: github, secret: s3cret}
      - name: after
        type: step.set
        config: {values: {processed: true}}
    """)
    signature = "sha256=" + sign("s3cret" if good else "wrong", body.encode())
    req = {"headers": {"X-Hub-Signature-256": signature}, "body": body}
    _, out = await app.run_pipeline(engine, "p", {}, meta={"_http_request": req})
    if good:
        assert out["verified"] is True and out["processed"] is True
    else:
        assert out["verified"] is False and "processed" not in out
        assert out["reason"] == "signature mismatch" and out["response_status"] == 401


@pytest.mark.parametrize("form", ["${TREADLE_TEST_HOOK}", "${TREADLE_TEST_HOOK:-dev}"])
async def test_webhook_secret_from_the_environment_never_reaches_the_journal(
    load_app: LoadApp, engine: treadle.Engine, monkeypatch: pytest.MonkeyPatch, form: str,
) -> None:
    monkeypatch.setenv("TREADLE_TEST_HOOK", "hook-s3cr3t")
    body = '{"event":"push"}'
    app = app_with(load_app, f"""
      - name: verify
        type: step.webhook_verify
        config: {{provider: github, secret: "{form}"}}
    """)
    req = {"headers": {"X-Hub-Signature-256": "sha256=" + sign("hook-s3cr3t", body.encode())},
           "body": body}
    execution_id, out = await app.run_pipeline(engine, "p", {}, meta={"_http_request": req})
    assert out["verified"] is True
    journal = json.dumps([e.data for e in await engine.events(execution_id)])
    assert "hook-s3cr3t" not in journal  # the journal keeps the reference, not the secret
    assert form.replace('"', '\\"') in journal or form in journal


async def test_webhook_verify_stripe_generic_and_schemes(load_app: LoadApp,
                                                         engine: treadle.Engine) -> None:
    body = b"payload"
    t = int(time.time())
    stripe_sig = sign("k", f"{t}.".encode() + body)
    stripe = {"headers": {"Stripe-Signature": f"t={t},v1=bad,v1={stripe_sig}"},
              "body_base64": base64.b64encode(body).decode()}
    generic = {"headers": {"X-Sig": sign("k", body)}, "body": "payload"}
    form = "b=2&a=1"
    url_input = b"https://hooks.example/sms" + b"a1b2"
    twilio = {"path": "/sms", "headers": {"Host": "hooks.example", "X-Twilio-Signature":
              base64.b64encode(hmac.new(b"k", url_input, hashlib.sha1).digest()).decode()},
              "body": form}
    hexed = {"headers": {"X-Sig": "sha256=" + sign("k", body)}, "body": "payload"}
    cases = [("{provider: stripe, secret: k}", stripe),
             ("{provider: generic, secret: k, header: X-Sig}", generic),
             ("{scheme: hmac-sha1, secret: k, signature_header: X-Twilio-Signature, "
              "include_form_params: true}", twilio),
             ("{scheme: hmac-sha256-hex, secret_from: meta.key, signature_header: X-Sig}", hexed)]
    for i, (config, req) in enumerate(cases):
        app = app_with(load_app, f"""
      - name: verify
        type: step.webhook_verify
        config: {config}
        """, name=f"w{i}.yaml")
        _, out = await app.run_pipeline(engine, "p", {}, meta={"_http_request": req, "key": "k"})
        assert out["verified"] is True, (config, out)


async def test_delegate_to_a_service_module(load_app: LoadApp, engine: treadle.Engine) -> None:
    class Service:
        async def handle(self, action: str | None, data: dict[str, Any]) -> dict[str, Any]:
            return {"action": action, "got": data["x"]}

    app = app_with(load_app, """
      - name: legacy
        type: step.delegate
        config: {service: svc, action: create}
    """, modules={"svc": Service()})
    _, out = await app.run_pipeline(engine, "p", {"x": 1})
    assert out["delegated_to"] == "svc" and out["action"] == "create" and out["got"] == 1
    app = app_with(load_app, """
      - name: legacy
        type: step.delegate
        config: {service: nope}
    """, name="missing.yaml", modules={"svc": Service()})
    with pytest.raises(treadle.ExecutionFailedError,
                       match=r"service 'nope' is not defined in the application \(modules: svc\)"):
        await app.run_pipeline(engine, "p", {})
