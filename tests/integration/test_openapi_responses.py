"""The function's fault responses, which no request can cause, conform to docs/openapi.json.

The schemathesis test covers what requests can reach. These tests make Paynet, DynamoDB and
the configuration fail, and check each response against the document.
"""

from __future__ import annotations

import json

import pytest

from tests.support.aws import AwsErrorReply, LocalAws
from tests.support.events import api_event, valid_request
from tests.support.invoke import ApiResponse, invoke, start_cold
from tests.support.openapi_check import departures_from, load_document, undocumented_parts
from tests.support.paynet_sandbox import PaynetSandbox, ScriptedResponse, paynet_answer

pytestmark = pytest.mark.usefixtures("function_env")


def _assert_documented(response: ApiResponse, status: int, method: str = "POST") -> None:
    assert response.status == status
    problems = undocumented_parts(
        method=method,
        path="/v1/card/check_otp",
        status=response.status,
        headers=response.headers,
        body=response.raw["body"].encode(),
    )
    assert problems == []


def test_paynet_failure_code_documented(sandbox: PaynetSandbox) -> None:
    sandbox.enqueue(paynet_answer(5, "İşlem başarısız"))

    response = invoke(api_event(valid_request()))

    _assert_documented(response, 502)
    assert response.body["code"] == 5


def test_paynet_http_error_documented(sandbox: PaynetSandbox) -> None:
    sandbox.enqueue(ScriptedResponse(status=503, body=b"unavailable"))

    _assert_documented(invoke(api_event(valid_request())), 502)


def test_paynet_timeout_documented(sandbox: PaynetSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYNET_TIMEOUT_SECONDS", "1")
    start_cold()
    sandbox.enqueue(ScriptedResponse(action="hang"))

    _assert_documented(invoke(api_event(valid_request())), 504)


def test_attempt_store_failure_documented(local_aws: LocalAws) -> None:
    local_aws.fail("UpdateItem", AwsErrorReply("AccessDeniedException"))

    _assert_documented(invoke(api_event(valid_request())), 503)


def test_configuration_error_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATTEMPTS_TABLE_NAME")
    start_cold()

    _assert_documented(invoke(api_event(valid_request())), 500)


def test_attempt_limit_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_FAILED_CHECKS_PER_SESSION", "1")
    start_cold()
    invoke(api_event(valid_request(otp_code="000000")))

    _assert_documented(invoke(api_event(valid_request(otp_code="000000"))), 429)


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_large_body_documented(method: str) -> None:
    body = json.dumps({**valid_request(), "padding": "x" * 20_000})

    _assert_documented(invoke(api_event(raw_body=body, method=method)), 413, method)


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_form_body_documented(method: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    event = api_event(raw_body="otp_code=ART2", method=method, headers=headers)

    _assert_documented(invoke(event), 415, method)


@pytest.mark.parametrize(
    ("event", "status", "component"),
    [
        (api_event(valid_request(), path="/v1/card/other"), 404, "NotFound"),
        (api_event(valid_request(), method="GET"), 405, "MethodNotAllowed"),
    ],
    ids=["other path", "other method"],
)
def test_direct_invocation_errors_documented(
    event: dict[str, object], status: int, component: str
) -> None:
    response = invoke(event)
    documented = load_document()["components"]["responses"][component]

    assert response.status == status
    problems = departures_from(
        documented, status=status, headers=response.headers, body=response.raw["body"].encode()
    )
    assert problems == []
