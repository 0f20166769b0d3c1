"""CORS headers for web apps on the allowed origins, on every response the function returns.

The function adds them itself, rather than API Gateway, because only the function has the
list of allowed origins and can return each allowed origin in its own response.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type"
# Scripts in the browser read only a few response headers unless more are exposed, and a web
# app needs Retry-After to tell the user when to try again after a 429.
EXPOSED_HEADERS = "Retry-After"
# Browsers cap this (Chromium at 2 hours), so a longer value would have no effect.
PREFLIGHT_MAX_AGE_SECONDS = 7200


def header_value(headers: Mapping[str, Any] | None, name: str) -> str | None:
    """Return a request header by case-insensitive name, as API Gateway passes them as sent."""
    for key, value in (headers or {}).items():
        if key.lower() == name and isinstance(value, str):
            return value
    return None


def cors_headers(event: Mapping[str, Any], allowed_origins: frozenset[str]) -> dict[str, str]:
    """Return the CORS response headers for the request in ``event``.

    An origin that is not allowed gets none, so the browser blocks the response.
    """
    if not allowed_origins:
        return {}
    headers: dict[str, str] = {"Vary": "Origin"}
    origin = header_value(event.get("headers"), "origin")
    if origin is None or origin not in allowed_origins:
        return headers

    headers["Access-Control-Allow-Origin"] = origin
    if is_preflight(event):
        headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_SECONDS)
    else:
        headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return headers


def is_preflight(event: Mapping[str, Any]) -> bool:
    method = event.get("httpMethod")
    requested = header_value(event.get("headers"), "access-control-request-method")
    return method == "OPTIONS" and requested is not None


def add_headers(response: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """Add ``headers`` to an API Gateway proxy response, in both of its header maps."""
    if not headers:
        return response
    multi_value = response.setdefault("multiValueHeaders", {})
    for name, value in headers.items():
        multi_value[name] = [value]
        if isinstance(response.get("headers"), dict):
            response["headers"].pop(name, None)
    return response
