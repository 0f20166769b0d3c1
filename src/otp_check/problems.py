"""Map domain errors to HTTP responses with RFC 9457 problem details.

This module is the only place that turns an exception into a status code. Every outcome is
logged here once, as the fixed message "OTP check finished" with an ``outcome`` key.
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit

from otp_check.errors import (
    AttemptLimitReachedError,
    AttemptStoreError,
    ConfigurationError,
    OtpRejectedError,
    PaynetError,
    PaynetFailureCodeError,
    PaynetHTTPError,
    PaynetTimeoutError,
    SecretUnavailableError,
)
from otp_check.observability import logger, metrics

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:paynet-otp-check:problem:"

UNSUPPORTED_MEDIA_TYPE_DETAIL = "Send the request body as application/json."

# Responses depend on a one-time password, so no cache may keep them.
_COMMON_HEADERS = {"Cache-Control": "no-store"}


def _serialize(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def json_response(status: int, body: dict[str, Any], content_type: str) -> Response[str]:
    """Build a response whose body keeps non-ASCII text, such as Paynet's Turkish messages."""
    return Response(
        status_code=status,
        content_type=content_type,
        body=_serialize(body),
        headers=dict(_COMMON_HEADERS),
    )


def _problem_body(
    status: HTTPStatus, slug: str, title: str, detail: str, **members: Any
) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": int(status),
        "detail": detail,
        **members,
    }


def problem(
    status: HTTPStatus, slug: str, title: str, detail: str, **members: Any
) -> Response[str]:
    """Build an RFC 9457 problem details response."""
    return json_response(
        int(status), _problem_body(status, slug, title, detail, **members), PROBLEM_JSON
    )


def early_problem(status: HTTPStatus, slug: str, title: str, detail: str) -> dict[str, Any]:
    """Build a problem details proxy response for a request rejected before the resolver runs."""
    log_outcome("invalid_request", error_kind=slug)
    return {
        "statusCode": int(status),
        "multiValueHeaders": {
            "Content-Type": [PROBLEM_JSON],
            **{name: [value] for name, value in _COMMON_HEADERS.items()},
        },
        "body": _serialize(_problem_body(status, slug, title, detail)),
        "isBase64Encoded": False,
    }


def payload_too_large(max_bytes: int) -> dict[str, Any]:
    """Build the 413 response for a body that is rejected before any parsing."""
    return early_problem(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        "payload-too-large",
        "Payload too large",
        f"The request body is larger than {max_bytes} bytes.",
    )


def unsupported_media_type() -> dict[str, Any]:
    """Build the 415 response for a body that is not sent as JSON."""
    return early_problem(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        UNSUPPORTED_MEDIA_TYPE_DETAIL,
    )


def log_outcome(outcome: str, level: int = logging.INFO, **keys: Any) -> None:
    """Write the one log line and count the one metric of a request's outcome."""
    log = logger.error if level >= logging.ERROR else logger.info
    log("OTP check finished", extra={"outcome": outcome, **keys})
    metrics.add_metric(name=_OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)


_OUTCOME_METRICS = {
    "verified": "VerifiedChecks",
    "rejected": "RejectedChecks",
    "failed": "FailedChecks",
    "invalid_request": "InvalidRequests",
    "limited": "LimitedChecks",
    "error": "InternalErrors",
}


def register_error_handlers(app: APIGatewayRestResolver, *, route_path: str) -> None:
    """Register the exception handlers that turn every error into problem details."""

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response[str]:
        errors = describe_validation_errors(exc.errors())
        log_outcome(
            "invalid_request", error_kind=type(exc).__name__, invalid_fields=_fields(errors)
        )
        return problem(
            HTTPStatus.BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            "The request body is not a valid OTP check request.",
            errors=errors,
        )

    @app.exception_handler([binascii.Error, UnicodeDecodeError])
    def _undecodable_body(exc: ValueError) -> Response[str]:
        # Powertools decodes a body marked isBase64Encoded before validation, and raises these
        # for bad base64 or for bytes that are not UTF-8.
        log_outcome("invalid_request", error_kind=type(exc).__name__)
        errors = [{"field": "body", "message": "must be valid base64 of UTF-8 JSON"}]
        return problem(
            HTTPStatus.BAD_REQUEST,
            "invalid-request",
            "Invalid request",
            "The request body cannot be decoded.",
            errors=errors,
        )

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_media_type(exc: RequestUnsupportedContentType) -> Response[str]:
        # lambda_handler rejects other media types first, so this handler is a second line.
        log_outcome("invalid_request", error_kind=type(exc).__name__)
        return problem(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            UNSUPPORTED_MEDIA_TYPE_DETAIL,
        )

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response[str]:
        log_outcome("invalid_request", error_kind=type(exc).__name__)
        if app.current_event.path == route_path:
            response = problem(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                f"{route_path} accepts only POST, and OPTIONS for CORS preflight.",
            )
            response.headers["Allow"] = "POST, OPTIONS"
            return response
        return problem(
            HTTPStatus.NOT_FOUND,
            "not-found",
            "Not found",
            f"No route matches the request. The OTP check is POST {route_path}.",
        )

    @app.exception_handler(OtpRejectedError)
    def _otp_rejected(exc: OtpRejectedError) -> Response[str]:
        log_outcome("rejected", paynet_code=exc.code)
        return problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "otp-rejected",
            "OTP rejected",
            "Paynet rejected the one-time password. It may be wrong or expired.",
            verified=False,
            code=exc.code,
            message=exc.paynet_message,
        )

    @app.exception_handler(AttemptLimitReachedError)
    def _limit_reached(exc: AttemptLimitReachedError) -> Response[str]:
        log_outcome("limited", limit_scope=exc.scope, retry_after=exc.retry_after_seconds)
        response = problem(
            HTTPStatus.TOO_MANY_REQUESTS,
            "too-many-attempts",
            "Too many attempts",
            f"Too many failed checks for this {exc.scope}. Request a new OTP or try again later.",
            verified=False,
        )
        response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response

    @app.exception_handler(AttemptStoreError)
    def _attempt_store_error(exc: AttemptStoreError) -> Response[str]:
        # Fail closed: without the counters, the OTP could be guessed without limit.
        log_outcome(
            "error",
            logging.ERROR,
            error_kind=type(exc).__name__,
            error_code=exc.error_code,
            error=str(exc),
        )
        return problem(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "attempt-store-unavailable",
            "Service unavailable",
            "The service cannot check OTPs right now. The OTP was not verified. Try again.",
        )

    @app.exception_handler(PaynetTimeoutError)
    def _paynet_timeout(exc: PaynetTimeoutError) -> Response[str]:
        log_outcome("failed", logging.ERROR, error_kind=type(exc).__name__, error=str(exc))
        return problem(
            HTTPStatus.GATEWAY_TIMEOUT,
            "paynet-timeout",
            "Paynet timed out",
            "Paynet did not respond in time. The OTP was not verified. Try again.",
        )

    @app.exception_handler(PaynetFailureCodeError)
    def _paynet_failure_code(exc: PaynetFailureCodeError) -> Response[str]:
        log_outcome("failed", logging.ERROR, error_kind=type(exc).__name__, paynet_code=exc.code)
        return problem(
            HTTPStatus.BAD_GATEWAY,
            "paynet-error",
            "Paynet error",
            "Paynet could not check the OTP.",
            verified=False,
            code=exc.code,
            message=exc.paynet_message,
        )

    @app.exception_handler(PaynetError)
    def _paynet_error(exc: PaynetError) -> Response[str]:
        # Paynet error messages are this project's own text and never contain request data.
        keys: dict[str, Any] = {"error_kind": type(exc).__name__, "error": str(exc)}
        if isinstance(exc, PaynetHTTPError):
            keys.update(
                paynet_http_status=exc.status,
                paynet_error_type=exc.error_type,
                paynet_result_code=exc.result_code,
            )
        log_outcome("failed", logging.ERROR, **keys)
        return problem(
            HTTPStatus.BAD_GATEWAY,
            "paynet-error",
            "Paynet error",
            "Paynet could not check the OTP. The OTP was not verified.",
        )

    @app.exception_handler(ConfigurationError)
    def _configuration_error(exc: ConfigurationError) -> Response[str]:
        keys: dict[str, Any] = {"error_kind": type(exc).__name__, "error": str(exc)}
        if isinstance(exc, SecretUnavailableError):
            keys["error_code"] = exc.error_code
        log_outcome("error", logging.ERROR, **keys)
        return _internal_error()

    @app.exception_handler(Exception)
    def _unexpected_error(exc: Exception) -> Response[str]:
        logger.exception("Unexpected error", extra={"error_kind": type(exc).__name__})
        log_outcome("error", logging.ERROR, error_kind=type(exc).__name__)
        return _internal_error()


def _internal_error() -> Response[str]:
    # The detail stays generic: the cause is in the log, and it may name the secret.
    return problem(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal error",
        "The service could not check the OTP. The OTP was not verified.",
    )


def describe_validation_errors(errors: Sequence[Any]) -> list[dict[str, str]]:
    """Name each invalid field and what is wrong with it, without echoing the input."""
    described = []
    for error in errors:
        location = [part for part in error.get("loc", ()) if part != "body"]
        field = str(location[0]) if location and isinstance(location[0], str) else "body"
        described.append({"field": field, "message": _validation_message(field, error)})
    return described


def _validation_message(field: str, error: dict[str, Any]) -> str:
    error_type = error.get("type")
    if error_type == "json_invalid":
        return "must be valid JSON"
    if error_type == "missing":
        return "is required" if field != "body" else "must be a JSON object with the OTP fields"
    if field == "body":
        return "must be a JSON object"
    # The messages of this project's validators are written for clients. Pydantic's own
    # messages do not quote the input either.
    return str(error.get("msg", "is invalid"))


def _fields(errors: list[dict[str, str]]) -> list[str]:
    return sorted({error["field"] for error in errors})
