"""The documented responses of the HTTP API, for its OpenAPI description.

problems.py and handler.py build the responses. The models here only describe them for the
OpenAPI document, and the schemathesis test checks the function's real responses against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from otp_check.cors import ALLOWED_HEADERS, ALLOWED_METHODS, EXPOSED_HEADERS
from otp_check.models import VerifiedResponse
from otp_check.problems import PROBLEM_JSON, PROBLEM_TYPE_PREFIX


def _drop_default(schema: dict[str, Any]) -> None:
    # An optional member that the response leaves out is never null, so the schema names no
    # default value.
    schema.pop("default", None)


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    type: str = Field(description="URI that names the problem type")
    title: str = Field(description="Short summary of the problem type, the same for every response")
    status: int = Field(description="The HTTP status code")
    detail: str = Field(description="What went wrong with this request, for the app's developer")


class FieldError(BaseModel):
    """One invalid part of the request body."""

    field: str = Field(
        description="Name of the invalid member, or `body` when the body as a whole is invalid"
    )
    message: str = Field(description="What is wrong with it. The value sent is never repeated.")


class InvalidRequestProblem(Problem):
    """The request body is empty, not JSON, not an object, or a member is missing or invalid."""

    type: Literal["urn:paynet-otp-check:problem:invalid-request"]
    title: Literal["Invalid request"]
    status: Literal[400]
    errors: list[FieldError] = Field(min_length=1, description="Each invalid part of the body")


class NotFoundProblem(Problem):
    """No route matches the request."""

    type: Literal["urn:paynet-otp-check:problem:not-found"]
    title: Literal["Not found"]
    status: Literal[404]


class MethodNotAllowedProblem(Problem):
    """The path exists, but not with this method."""

    type: Literal["urn:paynet-otp-check:problem:method-not-allowed"]
    title: Literal["Method not allowed"]
    status: Literal[405]


class PayloadTooLargeProblem(Problem):
    """The request body is larger than 16 KiB."""

    type: Literal["urn:paynet-otp-check:problem:payload-too-large"]
    title: Literal["Payload too large"]
    status: Literal[413]


class UnsupportedMediaTypeProblem(Problem):
    """The request body is sent with another media type than JSON."""

    type: Literal["urn:paynet-otp-check:problem:unsupported-media-type"]
    title: Literal["Unsupported media type"]
    status: Literal[415]


class OtpRejectedProblem(Problem):
    """Paynet rejected the OTP: it is wrong or expired."""

    type: Literal["urn:paynet-otp-check:problem:otp-rejected"]
    title: Literal["OTP rejected"]
    status: Literal[422]
    verified: Literal[False]
    code: Literal[1, 11, 12] = Field(
        description="Paynet's return code: 1 (unsuccessful), 11 (badrequest) or 12 (nodata)"
    )
    message: str = Field(description="Paynet's message, unchanged")


class TooManyAttemptsProblem(Problem):
    """The OTP session or the phone number has used up its failed checks."""

    type: Literal["urn:paynet-otp-check:problem:too-many-attempts"]
    title: Literal["Too many attempts"]
    status: Literal[429]
    verified: Literal[False]


class InternalErrorProblem(Problem):
    """The function's own configuration is broken."""

    type: Literal["urn:paynet-otp-check:problem:internal-error"]
    title: Literal["Internal error"]
    status: Literal[500]


class PaynetErrorProblem(Problem):
    """Paynet failed or returned a response that the function cannot use."""

    type: Literal["urn:paynet-otp-check:problem:paynet-error"]
    title: Literal["Paynet error"]
    status: Literal[502]
    verified: Literal[False] = Field(
        default=False,
        description="Present when Paynet's response had a return code",
        json_schema_extra=_drop_default,
    )
    code: int | SkipJsonSchema[None] = Field(
        default=None,
        description="Paynet's return code: 2 to 10 or an undocumented one",
        json_schema_extra=_drop_default,
    )
    message: str | SkipJsonSchema[None] = Field(
        default=None,
        description="Paynet's message, unchanged",
        json_schema_extra=_drop_default,
    )


class AttemptStoreUnavailableProblem(Problem):
    """The attempt counters could not be read or written, so Paynet was not called."""

    type: Literal["urn:paynet-otp-check:problem:attempt-store-unavailable"]
    title: Literal["Service unavailable"]
    status: Literal[503]


class PaynetTimeoutProblem(Problem):
    """Paynet did not respond in time."""

    type: Literal["urn:paynet-otp-check:problem:paynet-timeout"]
    title: Literal["Paynet timed out"]
    status: Literal[504]


# Header and response objects are plain dictionaries, because Powertools' TypedDicts have no
# `required` member for headers although OpenAPI has one.
_CACHE_CONTROL: dict[str, Any] = {
    "description": "Responses depend on a one-time password, so no cache may keep them.",
    "required": True,
    "schema": {"type": "string", "const": "no-store"},
}
_VARY: dict[str, Any] = {
    "description": "Sent whenever browser origins are configured.",
    "schema": {"type": "string", "const": "Origin"},
}
_ALLOW_ORIGIN: dict[str, Any] = {
    "description": "The request's `Origin`, when it is one of the configured origins.",
    "schema": {"type": "string"},
}
_RESPONSE_HEADERS: dict[str, Any] = {
    "Cache-Control": _CACHE_CONTROL,
    "Access-Control-Allow-Origin": _ALLOW_ORIGIN,
    "Access-Control-Expose-Headers": {
        "description": "Sent with `Access-Control-Allow-Origin`, so that scripts can read them.",
        "schema": {"type": "string", "const": EXPOSED_HEADERS},
    },
    "Vary": _VARY,
}


def _problem_example(
    slug: str, title: str, status: int, detail: str, **members: Any
) -> dict[str, Any]:
    return {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        **members,
    }


def _problem_response(
    model: type[Problem],
    description: str,
    examples: dict[str, dict[str, Any]],
    extra_headers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {**_RESPONSE_HEADERS, **(extra_headers or {})},
        "content": {
            PROBLEM_JSON: {
                "model": model,
                "examples": {name: {"value": value} for name, value in examples.items()},
            }
        },
    }


_INVALID_REQUEST = "The request body is not a valid OTP check request."
_PAYNET_FAILED = "Paynet could not check the OTP. The OTP was not verified."
_TRY_AGAIN = "The OTP was not verified. Try again."

CHECK_OTP_RESPONSES: dict[int, Any] = {
    200: {
        "description": "Paynet verified the OTP (return code 0).",
        "headers": _RESPONSE_HEADERS,
        "content": {
            "application/json": {
                "model": VerifiedResponse,
                "examples": {
                    "verified": {
                        "value": {"verified": True, "code": 0, "message": "Başarılı İşlem"}
                    }
                },
            }
        },
    },
    400: _problem_response(
        InvalidRequestProblem,
        "The body is empty, `null`, not JSON, not an object, or not decodable base64, or a "
        "member is missing or invalid. `errors` names each invalid member.",
        {
            "invalid phone number": _problem_example(
                "invalid-request",
                "Invalid request",
                400,
                _INVALID_REQUEST,
                errors=[
                    {
                        "field": "user_gsm",
                        "message": "must be a Turkish mobile number, for example 5324818942",
                    }
                ],
            ),
            "not JSON": _problem_example(
                "invalid-request",
                "Invalid request",
                400,
                _INVALID_REQUEST,
                errors=[{"field": "body", "message": "must be valid JSON"}],
            ),
        },
    ),
    413: _problem_response(
        PayloadTooLargeProblem,
        "The body is larger than 16 KiB (for a base64 body, the decoded size counts).",
        {
            "too large": _problem_example(
                "payload-too-large",
                "Payload too large",
                413,
                "The request body is larger than 16384 bytes.",
            )
        },
    ),
    415: _problem_response(
        UnsupportedMediaTypeProblem,
        "The `Content-Type` is not `application/json`. A request without one is read as JSON.",
        {
            "form body": _problem_example(
                "unsupported-media-type",
                "Unsupported media type",
                415,
                "Send the request body as application/json.",
            )
        },
    ),
    422: _problem_response(
        OtpRejectedProblem,
        "Paynet rejected the OTP: return code 1 (unsuccessful), 11 (badrequest) or 12 (nodata). "
        "The failed check counts towards the attempt limits.",
        {
            "wrong code": _problem_example(
                "otp-rejected",
                "OTP rejected",
                422,
                "Paynet rejected the one-time password. It may be wrong or expired.",
                verified=False,
                code=1,
                message="Doğrulama kodu hatalı",
            )
        },
    ),
    429: _problem_response(
        TooManyAttemptsProblem,
        "The OTP session (5 failed checks by default) or the phone number (10 within an hour by "
        "default) has used up its failed checks. Paynet was not called. API Gateway's own "
        'throttling response also has status 429, but with the body `{"message": "Too Many '
        'Requests"}` and without `Retry-After`.',
        {
            "session limit": _problem_example(
                "too-many-attempts",
                "Too many attempts",
                429,
                "Too many failed checks for this session. Request a new OTP or try again later.",
                verified=False,
            )
        },
        {
            "Retry-After": {
                "description": "Seconds until the counter that reached its limit expires.",
                "required": True,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        },
    ),
    500: _problem_response(
        InternalErrorProblem,
        "The function's configuration is broken, for example a missing setting or a missing "
        "or malformed secret. The log has the cause.",
        {
            "configuration": _problem_example(
                "internal-error",
                "Internal error",
                500,
                "The service could not check the OTP. The OTP was not verified.",
            )
        },
    ),
    502: _problem_response(
        PaynetErrorProblem,
        "Paynet failed or answered something unusable: return codes 2 to 10 or an "
        "undocumented code (then the body has `verified`, `code` and `message`), an HTTP "
        "status other than 200, an invalid body, or a failed connection.",
        {
            "Paynet HTTP 500": _problem_example(
                "paynet-error", "Paynet error", 502, _PAYNET_FAILED
            ),
            "failure code": _problem_example(
                "paynet-error",
                "Paynet error",
                502,
                "Paynet could not check the OTP.",
                verified=False,
                code=2,
                message="Sistem hatası",
            ),
        },
    ),
    503: _problem_response(
        AttemptStoreUnavailableProblem,
        "DynamoDB failed, so the failed checks could not be counted, and Paynet was not called.",
        {
            "DynamoDB down": _problem_example(
                "attempt-store-unavailable",
                "Service unavailable",
                503,
                "The service cannot check OTPs right now. " + _TRY_AGAIN,
            )
        },
    ),
    504: _problem_response(
        PaynetTimeoutProblem,
        "Paynet did not answer in time.",
        {
            "Paynet timed out": _problem_example(
                "paynet-timeout",
                "Paynet timed out",
                504,
                "Paynet did not respond in time. " + _TRY_AGAIN,
            )
        },
    ),
}

PREFLIGHT_RESPONSES: dict[int, Any] = {
    204: {
        "description": (
            "The CORS preflight response, with an empty body. The `Access-Control-Allow-*` "
            "headers are sent only when the request's `Origin` is one of the configured "
            "origins and it has `Access-Control-Request-Method`."
        ),
        # Without a content member, Powertools would describe a JSON string body.
        "content": {},
        "headers": {
            "Cache-Control": _CACHE_CONTROL,
            "Access-Control-Allow-Origin": _ALLOW_ORIGIN,
            "Access-Control-Allow-Methods": {
                "description": "The methods of the API.",
                "schema": {"type": "string", "const": ALLOWED_METHODS},
            },
            "Access-Control-Allow-Headers": {
                "description": "The request headers that a browser may send.",
                "schema": {"type": "string", "const": ALLOWED_HEADERS},
            },
            "Access-Control-Max-Age": {
                "description": "Seconds that a browser may cache this preflight response.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
            "Vary": _VARY,
        },
    },
    # The function rejects these before it routes the request, so an OPTIONS request gets
    # them too, although a browser's preflight has neither a body nor a Content-Type.
    413: CHECK_OTP_RESPONSES[413],
    415: CHECK_OTP_RESPONSES[415],
}

# Responses that no request through API Gateway gets, because API Gateway responds to other
# paths and methods itself. The function returns them to a direct invocation.
UNROUTED_RESPONSES: dict[str, dict[str, Any]] = {
    "NotFound": _problem_response(
        NotFoundProblem,
        "No route matches the request.",
        {
            "unknown path": _problem_example(
                "not-found",
                "Not found",
                404,
                "No route matches the request. The OTP check is POST /v1/card/check_otp.",
            )
        },
    ),
    "MethodNotAllowed": _problem_response(
        MethodNotAllowedProblem,
        "Another method than POST or OPTIONS on /v1/card/check_otp.",
        {
            "GET": _problem_example(
                "method-not-allowed",
                "Method not allowed",
                405,
                "/v1/card/check_otp accepts only POST, and OPTIONS for CORS preflight.",
            )
        },
        {
            "Allow": {
                "description": "The methods of the path.",
                "required": True,
                "schema": {"type": "string", "const": "POST, OPTIONS"},
            }
        },
    ),
}
