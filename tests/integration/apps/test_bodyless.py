"""204 and 304 responses on a real uvicorn server: no body, no Content-Type or Content-Length,
and the connection stays usable (no stray body bytes before the next response)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

Serve = Callable[..., Any]


async def _exchange(url: str, requests: list[str]) -> list[bytes]:
    """Send `requests` one after the other on ONE keep-alive connection; the raw bytes of
    each bodyless response head, then everything up to EOF after the last (Connection: close)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    out: list[bytes] = []
    try:
        for i, target in enumerate(requests):
            last = i == len(requests) - 1
            method, path = target.split(" ", 1)
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: test\r\n"
                         f"{'Connection: close' if last else 'Connection: keep-alive'}\r\n"
                         "\r\n".encode())  # fmt: skip
            await writer.drain()
            out.append(await (reader.read() if last else reader.readuntil(b"\r\n\r\n")))
    finally:
        writer.close()
        await writer.wait_closed()
    return out


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}


@pytest.mark.parametrize(("target", "status"), [("DELETE /things/t-1", 204),
                                                ("GET /cached", 304)])  # fmt: skip
async def test_bodyless_status_has_no_body_or_body_headers(serve_app: Serve, target: str,
                                                           status: int) -> None:
    async with serve_app("bodyless.yaml") as s:
        bodyless, after = await _exchange(s.url, [target, "GET /ok"])
        assert bodyless.startswith(f"HTTP/1.1 {status} ".encode()), bodyless
        headers = _headers(bodyless)
        assert "content-type" not in headers and "content-length" not in headers
        assert "transfer-encoding" not in headers
        assert "x-treadle-execution-id" in headers
        if status == 204:
            assert headers["x-deleted"] == "yes"  # other headers are kept
        else:
            assert headers["etag"] == '"v1"'
        # the next response on the same connection starts right away: no body bytes leaked
        assert after.startswith(b"HTTP/1.1 200 OK\r\n"), after[:80]
        assert after.endswith(b'\r\n\r\n{"ok":true}')
        assert _headers(after.split(b"\r\n\r\n")[0])["content-length"] == "11"


async def test_head_keeps_the_length_of_the_body_it_omits(serve_app: Serve) -> None:
    async with serve_app("bodyless.yaml") as s:
        response = await s.client.head("/ok")  # a GET route answers HEAD
        assert response.status_code == 200 and response.content == b""
        assert response.headers["content-length"] == "11"


async def test_httpx_sees_an_empty_204(serve_app: Serve) -> None:
    async with serve_app("bodyless.yaml") as s:
        response = await s.client.delete("/things/t-2")
        assert response.status_code == 204 and response.content == b""
        assert "content-type" not in response.headers
