"""API Gateway REST proxy events for calling the handler, built from events/check_otp.json."""

from __future__ import annotations

import base64
import copy
import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@cache
def _base_event() -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / "check_otp.json").read_text("utf-8"))
    return event


def load_event(name: str) -> dict[str, Any]:
    """Load one of the files in events/."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / name).read_text("utf-8"))
    return event


def api_event(
    body: Any = None,
    *,
    raw_body: str | None = None,
    method: str = "POST",
    path: str = "/v1/card/check_otp",
    headers: dict[str, str] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """Build a REST proxy event.

    ``body`` is serialized as JSON; ``raw_body`` is used as it is (``None`` for no body).
    Each event gets its own request id.
    """
    event = copy.deepcopy(_base_event())
    text = raw_body if raw_body is not None or body is None else json.dumps(body)
    if base64_encoded and text is not None:
        text = base64.b64encode(text.encode("utf-8")).decode("ascii")
    event["body"] = text
    event["isBase64Encoded"] = base64_encoded
    event["httpMethod"] = method
    event["path"] = path
    event["resource"] = path
    event["requestContext"]["httpMethod"] = method
    event["requestContext"]["path"] = f"/{event['requestContext'].get('stage', 'prod')}{path}"
    event["requestContext"]["resourcePath"] = path
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if headers is not None:
        event["headers"] = dict(headers)
        event["multiValueHeaders"] = {name: [value] for name, value in headers.items()}
    return event


def valid_request(**overrides: Any) -> dict[str, Any]:
    request = {"user_gsm": "5324818942", "otp_session_id": "123456", "otp_code": "ART2"}
    request.update(overrides)
    return request
