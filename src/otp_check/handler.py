"""Lambda entry point: API Gateway REST proxy events in, OTP check results out."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from otp_check.dependencies import get_verifier
from otp_check.models import CheckOtpRequest, VerifiedResponse
from otp_check.observability import logger, mask_phone_number, metrics, tracer
from otp_check.problems import json_response, log_outcome, register_error_handlers

CHECK_OTP_ROUTE = "/v1/card/check_otp"

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


app = APIGatewayRestResolver(enable_validation=True, json_body_deserializer=parse_json_body)
register_error_handlers(app, route_path=CHECK_OTP_ROUTE)


@app.post(CHECK_OTP_ROUTE)
def check_otp(request: Annotated[CheckOtpRequest, Body()]) -> Response[str]:
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


# The event is never logged: it contains the OTP and the phone number. log_event=False
# overrides POWERTOOLS_LOGGER_LOG_EVENT for that reason.
@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
