"""The web UI: `/ui`, static assets (`treadle/server/ui/`), outside the OpenAPI document.

The page holds no data and needs no credentials; it calls the API with the key or token the
user gives it (kept in the browser tab), so every answer it shows went through the API's
role and tenant checks. A strict Content-Security-Policy allows only this server's own script
and style, and the script puts API values in the page as text only.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _asset(name: str) -> Response:
    body = resources.files("treadle.server").joinpath("ui", name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers=HEADERS)


@router.get("/ui")
async def ui_root() -> Response:
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/")
async def ui_index() -> Response:
    return _asset("index.html")


@router.get("/ui/app.js")
async def ui_script() -> Response:
    return _asset("app.js")


@router.get("/ui/app.css")
async def ui_style() -> Response:
    return _asset("app.css")
