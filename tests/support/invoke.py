"""Call the Lambda handler the way API Gateway does and read its proxy response."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from otp_check import handler
from otp_check.dependencies import reset_dependencies
from tests.support.lambda_context import FakeLambdaContext


@dataclass(frozen=True)
class ApiResponse:
    """A REST proxy integration response, with the body parsed as JSON."""

    status: int
    headers: dict[str, str]
    body: Any
    raw: dict[str, Any]


def invoke(event: dict[str, Any], context: FakeLambdaContext | None = None) -> ApiResponse:
    raw = handler.lambda_handler(event, context or FakeLambdaContext())
    assert isinstance(raw["body"], str), "a proxy response body is a string"
    # API Gateway merges both header maps into the HTTP response.
    headers = dict(raw.get("headers") or {})
    for name, values in (raw.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    return ApiResponse(
        status=raw["statusCode"],
        headers=headers,
        body=json.loads(raw["body"]) if raw["body"] else None,
        raw=raw,
    )


def start_cold() -> None:
    """Drop the cached settings, connection pool and secret, as a new Lambda instance would."""
    reset_dependencies()


def invoke_timed(event: dict[str, Any], context: FakeLambdaContext) -> tuple[ApiResponse, float]:
    """Invoke the handler and return its response with the seconds it took."""
    started = time.monotonic()
    response = invoke(event, context)
    return response, time.monotonic() - started
