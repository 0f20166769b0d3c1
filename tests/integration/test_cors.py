"""CORS: the preflight and every response carry the headers for an allowed origin, and none
for another."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.events import api_event, valid_request
from tests.support.invoke import ApiResponse, invoke
from tests.support.paynet_sandbox import PaynetSandbox

ALLOWED = "https://app.example.com"
OTHER_ALLOWED = "http://localhost:3000"
UNKNOWN = "https://attacker.example.net"

_ALLOW_HEADERS = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers",
    "Access-Control-Max-Age",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
)


@pytest.fixture(autouse=True)
def allowed_origins(function_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", f"{ALLOWED}, {OTHER_ALLOWED}")


def _event(kind: str, origin: str) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", "origin": origin}
    if kind == "verified":
        return api_event(valid_request(), headers=headers)
    if kind == "rejected":
        return api_event(valid_request(otp_code="WRONG9"), headers=headers)
    if kind == "invalid":
        return api_event(valid_request(user_gsm="12"), headers=headers)
    if kind == "unknown-route":
        return api_event(valid_request(), path="/v1/card/other", headers=headers)
    if kind == "too-large":
        return api_event(valid_request(padding="x" * 20_000), headers=headers)
    if kind == "wrong-method":
        return api_event(valid_request(), method="PUT", headers=headers)
    raise AssertionError(kind)


RESPONSE_KINDS = {
    "verified": 200,
    "rejected": 422,
    "invalid": 400,
    "unknown-route": 404,
    "too-large": 413,
    "wrong-method": 405,
}


def _preflight(origin: str, **extra_headers: str) -> ApiResponse:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
        **extra_headers,
    }
    return invoke(api_event(method="OPTIONS", headers=headers))


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize("origin", [ALLOWED, OTHER_ALLOWED])
@pytest.mark.parametrize(("kind", "status"), RESPONSE_KINDS.items())
def test_allowed_origin_gets_cors_headers(kind: str, status: int, origin: str) -> None:
    response = invoke(_event(kind, origin))
    assert response.status == status
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Vary"] == "Origin"
    # Credentials are never allowed: the apps send no cookies to this API.
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(("kind", "status"), RESPONSE_KINDS.items())
def test_unknown_origin_gets_no_cors_headers(
    sandbox: PaynetSandbox, kind: str, status: int
) -> None:
    response = invoke(_event(kind, UNKNOWN))
    assert response.status == status
    for name in _ALLOW_HEADERS:
        assert name not in response.headers
    # Caches must still keep the responses for different origins apart.
    assert response.headers["Vary"] == "Origin"


@pytest.mark.parametrize(
    "origin",
    [ALLOWED.upper(), ALLOWED + "/", ALLOWED + ".attacker.net", "null", "", ALLOWED + ":443"],
)
def test_near_miss_origins_are_unknown(sandbox: PaynetSandbox, origin: str) -> None:
    response = invoke(_event("verified", origin))
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_from_allowed_origin(sandbox: PaynetSandbox) -> None:
    response = _preflight(ALLOWED)
    assert response.status == 204
    assert response.body is None
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert response.headers["Access-Control-Max-Age"] == "7200"
    assert response.headers["Vary"] == "Origin"
    assert sandbox.requests == []


def test_preflight_header_names_in_any_case(sandbox: PaynetSandbox) -> None:
    headers = {"ORIGIN": ALLOWED, "access-control-request-method": "POST"}
    response = invoke(api_event(method="OPTIONS", headers=headers))
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


def test_preflight_from_unknown_origin(sandbox: PaynetSandbox) -> None:
    response = _preflight(UNKNOWN)
    assert response.status == 204
    for name in _ALLOW_HEADERS:
        assert name not in response.headers
    assert sandbox.requests == []


def test_no_origin_header_gets_no_cors_headers(sandbox: PaynetSandbox) -> None:
    # Mobile apps send no Origin header; they are not browsers.
    response = invoke(api_event(valid_request()))
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_allowed_origins_means_no_cors_headers(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox
) -> None:
    monkeypatch.delenv("CORS_ALLOWED_ORIGINS")
    response = invoke(_event("verified", ALLOWED))
    assert response.status == 200
    for name in (*_ALLOW_HEADERS, "Vary"):
        assert name not in response.headers
    assert _preflight(ALLOWED).headers.get("Access-Control-Allow-Origin") is None


def test_limited_response_exposes_retry_after(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox
) -> None:
    monkeypatch.setenv("MAX_FAILED_CHECKS_PER_SESSION", "1")
    invoke(_event("rejected", ALLOWED))
    limited = invoke(_event("rejected", ALLOWED))
    assert limited.status == 429
    assert limited.headers["Access-Control-Allow-Origin"] == ALLOWED
    # Without this, a browser hides Retry-After from the web app's script.
    assert limited.headers["Access-Control-Expose-Headers"] == "Retry-After"


def test_configuration_error_still_carries_cors_headers(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox
) -> None:
    # Another setting is broken, so every request gets 500. A web app on an allowed origin can
    # still read that 500 rather than seeing a CORS error.
    monkeypatch.setenv("PAYNET_TIMEOUT_SECONDS", "not-a-number")
    response = invoke(_event("verified", ALLOWED))
    assert response.status == 500
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert sandbox.requests == []
