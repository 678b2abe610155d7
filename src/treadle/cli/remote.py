"""Talking to a Treadle server (`--server URL`): one small JSON client over httpx.

```python
with Remote("http://127.0.0.1:8080", api_key) as api:
    view = api.get("/api/v1/executions/" + api.quote(execution_id))
```

Every failure is a `RemoteError` (a `CliError`: printed as is, exit 1): the server's own
`{"error": {"code", "message", "details"}}` message, or which URL could not be reached. The API
key travels in `Authorization: Bearer` and is never part of a message. httpx is imported only
when a command talks to a server.
"""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING, Any

import typer

import treadle
from treadle.cli.errors import CliError
from treadle.errors import require

if TYPE_CHECKING:
    from types import TracebackType

    import httpx

DEFAULT_TIMEOUT = 30.0


class RemoteError(CliError):
    """The server answered with an error, or could not be reached (`status` is then None)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details


def display_url(url: str) -> str:
    """The URL as it may be printed: without a user or password in it."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port is not None else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _valid_url(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and (
            parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number
        return False


class Remote:
    """A JSON client of one server's `/api/v1`; use it as a context manager."""

    def __init__(self, url: str, api_key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        url = url.strip()
        if not _valid_url(url):
            raise typer.BadParameter(
                "expected the server's http:// or https:// URL, e.g. http://127.0.0.1:8080",
                param_hint="--server")
        require("httpx", "cli")
        import httpx

        self.url = display_url(url)
        self._key = api_key or None
        headers = {"Accept": "application/json",
                   "User-Agent": f"treadle-cli/{treadle.__version__}"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout,
                                    follow_redirects=False)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def quote(segment: str) -> str:
        """A path segment (an execution id) escaped for the URL."""
        return urllib.parse.quote(segment, safe="")

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET `path`; the JSON body of a 2xx answer."""
        return self.request("GET", path, params=params)[1]

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        """POST `body` as JSON to `path`; the status and JSON body of a 2xx answer."""
        return self.request("POST", path, body=body)

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None) -> tuple[int, Any]:
        import httpx

        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(method, path, params=query or None,
                                            json=body if method != "GET" else None)
        except httpx.ConnectError:
            raise RemoteError(f"cannot connect to the server at {self.url} (is `treadle serve` "
                              "running there? check --server / TREADLE_SERVER)") from None
        except httpx.TimeoutException:
            raise RemoteError(f"the server at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise RemoteError(f"cannot talk to the server at {self.url}: "
                              f"{type(exc).__name__}: {self._hide(str(exc))}") from None
        content = self._json(response)
        if response.is_success:
            return response.status_code, content
        raise self._error(response, content)

    def _json(self, response: httpx.Response) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            if response.is_success:
                raise RemoteError(f"the server at {self.url} answered {response.status_code} "
                                  "with a body that is not JSON: is it a Treadle server?"
                                  ) from None
            return None

    def _error(self, response: httpx.Response, content: Any) -> RemoteError:
        status = response.status_code
        error = content.get("error") if isinstance(content, dict) else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            reason = response.reason_phrase or "error"
            return RemoteError(f"the server at {self.url} answered {status} {reason} "
                               "(not a Treadle API error: check --server)", status=status)
        code = str(error.get("code") or "error")
        message = self._hide(error["message"])
        details = error.get("details")
        if code == "validation_error" and isinstance(details, list):
            problems = [f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                        for d in details if isinstance(d, dict)]
            if problems:
                message += " (" + "; ".join(problems) + ")"
        text = f"{message} [{status} {code}]"
        if status == 401:
            text += ("; give the server's API key with --api-key or TREADLE_API_KEY"
                     if self._key is None else
                     "; check the key given with --api-key or TREADLE_API_KEY")
        return RemoteError(text, status=status, code=code, details=details)

    def _hide(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text
