"""Lambda entry point: API Gateway REST proxy events in, OTP check results out."""

from __future__ import annotations

import json
import os
import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_check.cors import add_headers, cors_headers, header_value
from otp_check.dependencies import get_verifier
from otp_check.errors import ConfigurationError
from otp_check.models import CheckOtpRequest, VerifiedResponse
from otp_check.observability import logger, mask_phone_number, metrics, tracer
from otp_check.problems import (
    json_response,
    log_outcome,
    payload_too_large,
    register_error_handlers,
    unsupported_media_type,
)
from otp_check.responses import CHECK_OTP_RESPONSES, PREFLIGHT_RESPONSES
from otp_check.settings import get_settings, parse_allowed_origins

CHECK_OTP_ROUTE = "/v1/card/check_otp"

# A valid request is about 100 bytes. Anything far larger is rejected before it is decoded or
# parsed, so that no client can make the function spend time or memory on it.
MAX_REQUEST_BODY_BYTES = 16 * 1024

# Time kept back from the invocation's remaining time, so that a slow Paynet gets our own
# 504 response before Lambda stops the invocation.
DEADLINE_MARGIN_SECONDS = 1.0


def parse_json_body(body: str) -> Any:
    """Parse a request body, reporting every parse failure as a JSONDecodeError.

    json.loads raises RecursionError for deeply nested input and a plain ValueError for
    integers of more than 4300 digits. Both are invalid requests, not server errors.
    """
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise json.JSONDecodeError(type(exc).__name__, body, 0) from None


# debug=False overrides POWERTOOLS_DEV and POWERTOOLS_EVENT_HANDLER_DEBUG, whose debug mode prints
# every event, OTP and phone number included, and puts stack traces into error responses.
app = APIGatewayRestResolver(
    enable_validation=True, json_body_deserializer=parse_json_body, debug=False
)
register_error_handlers(app, route_path=CHECK_OTP_ROUTE)


@app.post(
    CHECK_OTP_ROUTE,
    summary="Check an OTP with Paynet",
    description=(
        "Checks the one-time password that Paynet sent by SMS for the OTP session, with "
        "Paynet's `POST /v1/card/check_otp`. Failed checks are counted per session and per "
        "phone number, and a 429 follows once a limit is reached."
    ),
    responses=CHECK_OTP_RESPONSES,
)
def check_otp(
    request: Annotated[
        CheckOtpRequest,
        Body(
            description="The OTP check. Send it as JSON; other members are ignored.",
            openapi_examples={
                "digits": {
                    "summary": "Phone number as 10 digits",
                    "value": {
                        "user_gsm": "5324818942",
                        "otp_session_id": "123456",
                        "otp_code": "ART2",
                    },
                },
                "written form": {
                    "summary": "Phone number as written, session id as an integer",
                    "value": {
                        "user_gsm": "+90 532 481 89 42",
                        "otp_session_id": 123456,
                        "otp_code": "123456",
                    },
                },
            },
        ),
    ],
) -> Response[str]:
    logger.append_keys(user_gsm=mask_phone_number(request.user_gsm))
    remaining_seconds = app.lambda_context.get_remaining_time_in_millis() / 1000
    deadline = time.monotonic() + remaining_seconds - DEADLINE_MARGIN_SECONDS

    verifier = get_verifier()
    try:
        verified = verifier.verify(request.to_paynet_payload(), deadline=deadline)
    finally:
        if verifier.last_latency_ms is not None:
            logger.append_keys(paynet_latency_ms=verifier.last_latency_ms)
            metrics.add_metric(
                name="PaynetLatency",
                unit=MetricUnit.Milliseconds,
                value=verifier.last_latency_ms,
            )

    log_outcome("verified", paynet_code=verified.code)
    body = VerifiedResponse(code=verified.code, message=verified.message)
    return json_response(200, body.model_dump(), "application/json")


@app.route(
    CHECK_OTP_ROUTE,
    method="OPTIONS",
    summary="CORS preflight",
    description="Browsers send it before a cross-origin POST. Apps never need to call it.",
    responses=PREFLIGHT_RESPONSES,
)
def preflight() -> Response[str]:
    # The CORS headers themselves are added to every response in lambda_handler.
    metrics.add_metric(name="PreflightRequests", unit=MetricUnit.Count, value=1)
    return Response(status_code=204, body="", headers={"Cache-Control": "no-store"})


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body")
    if not isinstance(body, str):
        return 0
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4  # Base64 takes 4 characters for every 3 bytes.
    # surrogatepass measures unpaired surrogates too, which a direct invocation can send. The
    # validation that follows rejects them with 400.
    return len(body.encode("utf-8", "surrogatepass"))


def _json_media_type(event: dict[str, Any]) -> dict[str, Any] | None:
    """Return the event with its Content-Type set to plain JSON, or None for another type.

    A missing Content-Type is read as JSON. Powertools would also parse form and multipart
    bodies, and compares media types by case-sensitive prefix. The API takes JSON only, so
    every other media type is rejected before Powertools parses the body, and a JSON one is
    passed on in the form Powertools matches.
    """
    content_type = header_value(event.get("headers"), "content-type")
    if content_type is None or not content_type.strip():
        return event
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        return None
    headers = {
        name: value for name, value in event["headers"].items() if name.lower() != "content-type"
    }
    headers["Content-Type"] = "application/json"
    return {**event, "headers": headers}


def _allowed_origins() -> frozenset[str]:
    try:
        return get_settings().cors_allowed_origins
    except ConfigurationError:
        # Another setting may be the broken one. Reading the origins on their own lets the
        # 500 for that error reach a web app on an allowed origin.
        try:
            return parse_allowed_origins(os.environ.get("CORS_ALLOWED_ORIGINS", ""))
        except ValueError:
            return frozenset()


# The event is never logged: it contains the OTP and the phone number. log_event=False
# overrides POWERTOOLS_LOGGER_LOG_EVENT for that reason.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if _body_size(event) > MAX_REQUEST_BODY_BYTES:
        response = payload_too_large(MAX_REQUEST_BODY_BYTES)
    elif (json_event := _json_media_type(event)) is None:
        response = unsupported_media_type()
    else:
        response = app.resolve(json_event, context)
    return add_headers(response, cors_headers(event, _allowed_origins()))
