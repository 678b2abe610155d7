"""Webhook steps: step.webhook_verify (HMAC signatures, compared in constant time)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from treadle.steps._context import PipelineContext
from treadle.steps.http import http_request, raw_body, request_header
from treadle.steps.registry import Checker, register

# -- step.webhook_verify --------------------------------------------------------------------

_SCHEMES = ("hmac-sha1", "hmac-sha256", "hmac-sha256-hex")
_PROVIDERS = ("github", "stripe", "generic")
STRIPE_TOLERANCE = 300.0


def _check_webhook(config: dict[str, Any], checker: Checker) -> None:
    scheme, provider = config.get("scheme"), config.get("provider")
    if scheme:
        if not (config.get("secret") or config.get("secret_from")):
            checker.fail("'secret' or 'secret_from' is required", "secret")
        if not (config.get("signature_header") or config.get("header")):
            checker.fail("'signature_header' is required when using scheme", "signature_header")
    elif provider:
        if not config.get("secret"):
            checker.fail("'secret' is required", "secret")
    else:
        checker.fail("'scheme' or 'provider' is required")


@register(
    "step.webhook_verify",
    doc="""
Verifies the HMAC signature of the triggering webhook request, comparing in constant time.
`provider: github` (X-Hub-Signature-256 `sha256=<hex>`), `stripe` (Stripe-Signature
`t=…,v1=…`, 5 minute tolerance) or `generic` (hex HMAC-SHA256 in `header`, default
X-Signature); or `scheme` hmac-sha256 (hex), hmac-sha256-hex (`sha256=<hex>`) or hmac-sha1
(base64) with `signature_header`. On a mismatch the pipeline stops with `verified: false` and an
`error_status` (401) response.
""",
    schema={
        "type": "object",
        "properties": {
            "provider": {"enum": list(_PROVIDERS)},
            "scheme": {"enum": list(_SCHEMES)},
            "secret": {"type": "string", "description": "Shared secret: `${VAR}` / "
                       "`${VAR:-default}` are expanded when the step runs, so the journal "
                       "keeps the reference, never the secret."},
            "secret_from": {"type": "string", "description": "Dotted path of the secret."},
            "signature_header": {"type": "string"},
            "header": {"type": "string", "description": "Header of the generic provider."},
            "url_reconstruction": {"type": "boolean", "default": False},
            "include_form_params": {"type": "boolean", "default": False},
            "error_status": {"type": "integer", "default": 401},
        },
        "additionalProperties": False,
    },
    raw_keys=("secret_from", "secret"),
    check=_check_webhook,
    stops=lambda output: output.get("verified") is not True,
    outputs={"verified": "whether the signature matched", "reason": "why not"},
    example="""
- name: verify
  type: step.webhook_verify
  config:
    provider: github
    secret: "${GITHUB_WEBHOOK_SECRET}"
""",
)
async def webhook_verify(config: dict[str, Any], ctx: PipelineContext) -> dict[str, Any]:
    req = http_request(ctx)
    status = int(config.get("error_status") or 401)
    if not req:
        return _unverified("no HTTP request in pipeline context", status)
    body = raw_body(req)
    secret = config.get("secret")
    if secret:
        from treadle.config.envexpand import expand_env

        secret = expand_env(os.path.expandvars(str(secret)))
    else:
        value = ctx.lookup(str(config.get("secret_from") or ""), default=None)
        if not isinstance(value, str):
            return _unverified(f"secret_from {config.get('secret_from')!r} is not a string",
                               status)  # fmt: skip
        secret = value
    key = secret.encode()
    scheme = config.get("scheme")
    if scheme:
        header = str(config.get("signature_header") or config.get("header"))
        signature = request_header(req, header)
        if not signature:
            return _unverified(f"missing {header} header", status)
        data = _form_input(req, body, config) if config.get("include_form_params") else body
        if scheme == "hmac-sha1":
            expected = base64.b64encode(hmac.new(key, data, hashlib.sha1).digest()).decode()
            return _compare(expected, signature, status)
        if scheme == "hmac-sha256-hex":
            if not signature.startswith("sha256="):
                return _unverified(f"{header} must have format sha256=<hex>", status)
            signature = signature.removeprefix("sha256=")
        return _compare(hmac.new(key, data, hashlib.sha256).hexdigest(), signature.lower(),
                        status)  # fmt: skip
    provider = config.get("provider")
    if provider == "github":
        signature = request_header(req, "X-Hub-Signature-256")
        if not signature or not signature.startswith("sha256="):
            return _unverified("missing or malformed X-Hub-Signature-256 header", status)
        return _compare("sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
                        signature.lower(), status)  # fmt: skip
    if provider == "stripe":
        return _verify_stripe(req, body, key, status)
    header = str(config.get("header") or "X-Signature")
    signature = request_header(req, header)
    if not signature:
        return _unverified(f"missing {header} header", status)
    return _compare(hmac.new(key, body, hashlib.sha256).hexdigest(), signature.lower(), status)


def _verify_stripe(req: Mapping[str, Any], body: bytes, key: bytes,
                   status: int) -> dict[str, Any]:  # fmt: skip
    header = request_header(req, "Stripe-Signature")
    if not header:
        return _unverified("missing Stripe-Signature header", status)
    timestamp, candidates = 0, []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if not timestamp or not candidates:
        return _unverified("invalid Stripe-Signature", status)
    if abs(time.time() - timestamp) > STRIPE_TOLERANCE:
        return _unverified("Stripe timestamp outside the tolerance", status)
    expected = hmac.new(key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    if any(hmac.compare_digest(expected.encode(), c.encode()) for c in candidates):
        return {"verified": True, "timestamp": timestamp}
    return _unverified("signature mismatch", status)


def _form_input(req: Mapping[str, Any], body: bytes, config: Mapping[str, Any]) -> bytes:
    """Twilio's signing input: the full URL, then form parameters sorted by key."""
    host = request_header(req, "Host") or ""
    scheme = "https"
    if config.get("url_reconstruction"):
        scheme = request_header(req, "X-Forwarded-Proto") or "https"
        host = request_header(req, "X-Forwarded-Host") or host
    url = f"{scheme}://{host}{req.get('path', '')}"
    params = urllib.parse.parse_qs(body.decode(errors="replace"), keep_blank_values=True)
    return (url + "".join(k + v for k in sorted(params) for v in params[k])).encode()


def _compare(expected: str, given: str, status: int) -> dict[str, Any]:
    if hmac.compare_digest(expected.encode(), given.encode()):
        return {"verified": True}
    return _unverified("signature mismatch", status)


def _unverified(reason: str, status: int) -> dict[str, Any]:
    return {"verified": False, "reason": reason, "response_status": status,
            "response_headers": {"Content-Type": "application/json"},
            "response_body": json.dumps({"error": "unauthorized",
                                         "reason": "webhook signature verification failed"})}
