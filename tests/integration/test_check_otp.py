"""The handler end to end: API Gateway events in, real HTTP to the Paynet sandbox, real boto3
calls to moto's Secrets Manager."""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3
import pytest

from tests.conftest import TEST_SECRET_KEY, create_secret
from tests.support.aws import AwsErrorReply, LocalAws
from tests.support.events import api_event, valid_request
from tests.support.invoke import ApiResponse, invoke, invoke_timed
from tests.support.lambda_context import FakeLambdaContext
from tests.support.paynet_sandbox import (
    PaynetSandbox,
    ScriptedResponse,
    paynet_answer,
)

pytestmark = pytest.mark.usefixtures("function_env")

PROBLEM_MEMBERS = {"type", "title", "status", "detail"}


def _check(**overrides: Any) -> ApiResponse:
    return invoke(api_event(valid_request(**overrides)))


def _assert_problem(response: ApiResponse, status: int) -> None:
    assert response.status == status
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.body.keys() >= PROBLEM_MEMBERS
    assert response.body["status"] == status


def test_verified_returns_200(sandbox: PaynetSandbox) -> None:
    response = _check()
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.body == {"verified": True, "code": 0, "message": "Başarılı İşlem"}
    assert len(sandbox.requests) == 1


def test_paynet_request_shape(sandbox: PaynetSandbox) -> None:
    _check(user_gsm="+90 532 481 89 42", otp_code=" ART2 ", otp_session_id=98765, extra="x")
    request = sandbox.requests[0]
    assert request.method == "POST"
    assert request.path == "/v1/card/check_otp"
    assert request.headers["authorization"] == f"Basic {TEST_SECRET_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert request.json() == {
        "user_gsm": "5324818942",
        "otp_session_id": "98765",
        "otp_code": "ART2",
    }


@pytest.mark.parametrize(
    "written",
    [
        "5324818942",
        "05324818942",
        "905324818942",
        "+90 532 481 89 42",
        "0532-481-89-42",
        "(532) 481 8942",
    ],
)
def test_user_gsm_forms_sent_normalised(sandbox: PaynetSandbox, written: str) -> None:
    assert _check(user_gsm=written).status == 200
    assert sandbox.requests[0].json()["user_gsm"] == "5324818942"


def test_base64_body_read(sandbox: PaynetSandbox) -> None:
    response = invoke(api_event(valid_request(), base64_encoded=True))
    assert response.status == 200
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize(
    ("raw_body", "field"),
    [
        (None, "body"),
        ("", "body"),
        ("null", "body"),
        ("not json", "body"),
        ("[1, 2]", "body"),
        ('"text"', "body"),
        ("{", "body"),
        ("[" * 8_000 + "]" * 8_000, "body"),
        ('{"user_gsm": ' + "1" * 5000 + "}", "body"),
    ],
)
def test_invalid_body_returns_400(sandbox: PaynetSandbox, raw_body: str | None, field: str) -> None:
    response = invoke(api_event(raw_body=raw_body))
    _assert_problem(response, 400)
    assert [error["field"] for error in response.body["errors"]] == [field]
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"user_gsm": "1234"}, "user_gsm"),
        ({"user_gsm": "+44 7911 123456"}, "user_gsm"),
        ({"otp_code": "12-34"}, "otp_code"),
        ({"otp_code": "A" * 17}, "otp_code"),
        ({"otp_session_id": True}, "otp_session_id"),
        ({"otp_session_id": {"id": 1}}, "otp_session_id"),
        ({"otp_session_id": "x" * 65}, "otp_session_id"),
        ({"otp_session_id": ""}, "otp_session_id"),
    ],
)
def test_invalid_field_returns_400(
    sandbox: PaynetSandbox, overrides: dict[str, Any], field: str
) -> None:
    response = _check(**overrides)
    _assert_problem(response, 400)
    assert [error["field"] for error in response.body["errors"]] == [field]
    assert all(error["message"] for error in response.body["errors"])
    assert sandbox.requests == []


def test_missing_fields_listed(sandbox: PaynetSandbox) -> None:
    response = invoke(api_event({"otp_code": "ART2"}))
    _assert_problem(response, 400)
    fields = sorted(error["field"] for error in response.body["errors"])
    assert fields == ["otp_session_id", "user_gsm"]
    assert sandbox.requests == []


def test_undecodable_base64_returns_400(sandbox: PaynetSandbox) -> None:
    event = api_event(raw_body="x") | {"isBase64Encoded": True, "body": "A"}
    response = invoke(event)
    _assert_problem(response, 400)
    assert sandbox.requests == []


def test_non_utf8_base64_returns_400(sandbox: PaynetSandbox) -> None:
    event = api_event(raw_body="x") | {"isBase64Encoded": True, "body": "//79"}
    response = invoke(event)
    _assert_problem(response, 400)
    assert sandbox.requests == []


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json; charset=utf-8", 200),
        ("Application/JSON", 200),
        ("", 200),
        ("text/plain", 415),
        ("application/jsonp", 415),
        ("application/x-www-form-urlencoded", 415),
        ("multipart/form-data; boundary=x", 415),
        ("multipart/form-data", 415),
    ],
)
def test_content_type_handling(sandbox: PaynetSandbox, content_type: str, status: int) -> None:
    event = api_event(valid_request(), headers={"Content-Type": content_type})
    response = invoke(event)
    assert response.status == status
    if status == 415:
        assert response.body["type"] == "urn:paynet-otp-check:problem:unsupported-media-type"
    assert len(sandbox.requests) == (1 if status == 200 else 0)


def test_unpaired_surrogate_in_body_returns_400(sandbox: PaynetSandbox) -> None:
    # API Gateway sends valid UTF-8, but a direct invocation can pass any string.
    body = '{"user_gsm": "5324818942", "otp_session_id": "\ud800", "otp_code": "ART2"}'
    _assert_problem(invoke(api_event(raw_body=body)), 400)
    assert sandbox.requests == []


def test_missing_content_type_read_as_json(sandbox: PaynetSandbox) -> None:
    event = api_event(valid_request(), headers={})
    assert invoke(event).status == 200


def test_form_body_not_forwarded(sandbox: PaynetSandbox) -> None:
    form = "user_gsm=5324818942&otp_session_id=1&otp_code=ART2"
    event = api_event(raw_body=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    _assert_problem(invoke(event), 415)
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "event",
    [
        api_event(valid_request(padding="x" * 1_000_000)),
        api_event(valid_request(otp_session_id="1" * 1_000_000)),
        api_event(valid_request(padding="x" * 20_000), base64_encoded=True),
    ],
    ids=["1MB-extra-member", "1MB-field", "base64"],
)
def test_oversized_body_returns_413(sandbox: PaynetSandbox, event: dict[str, Any]) -> None:
    response = invoke(event)
    _assert_problem(response, 413)
    assert response.body["type"] == "urn:paynet-otp-check:problem:payload-too-large"
    assert sandbox.requests == []


def test_body_under_limit_accepted(sandbox: PaynetSandbox) -> None:
    response = invoke(api_event(valid_request(padding="x" * 15_000)))
    assert response.status == 200
    assert "padding" not in sandbox.requests[0].json()


def test_missing_body_key_returns_400(sandbox: PaynetSandbox) -> None:
    event = api_event(valid_request())
    del event["body"]
    _assert_problem(invoke(event), 400)
    assert sandbox.requests == []


@pytest.mark.parametrize("name", ["content-type", "CONTENT-TYPE", "Content-Type", "cOnTeNt-TyPe"])
def test_header_name_case_ignored(sandbox: PaynetSandbox, name: str) -> None:
    response = invoke(api_event(valid_request(), headers={name: "application/json"}))
    assert response.status == 200
    assert len(sandbox.requests) == 1


def test_invalid_request_does_not_echo_otp() -> None:
    response = _check(otp_code="LEAK-ME-1")
    assert "LEAK-ME-1" not in json.dumps(response.raw)


def test_unknown_route_returns_404(sandbox: PaynetSandbox) -> None:
    response = invoke(api_event(valid_request(), path="/v1/card/save"))
    _assert_problem(response, 404)
    assert sandbox.requests == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_method_returns_405(sandbox: PaynetSandbox, method: str) -> None:
    response = invoke(api_event(valid_request(), method=method))
    _assert_problem(response, 405)
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert sandbox.requests == []


def test_wrong_code_returns_422(sandbox: PaynetSandbox) -> None:
    response = _check(otp_code="WRONG9")
    _assert_problem(response, 422)
    assert response.body["verified"] is False
    assert response.body["code"] == 1
    assert response.body["message"]
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize("code", [1, 11, 12, "1", "12"])
def test_rejection_codes_return_422(sandbox: PaynetSandbox, code: int | str) -> None:
    sandbox.enqueue(paynet_answer(code, "İşlem başarısız"))
    response = _check()
    _assert_problem(response, 422)
    assert response.body["code"] == int(code)
    assert response.body["message"] == "İşlem başarısız"
    assert response.body["verified"] is False


@pytest.mark.parametrize("code", [2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 21, 99])
def test_failure_codes_return_502(sandbox: PaynetSandbox, code: int) -> None:
    sandbox.enqueue(paynet_answer(code, "Sistem hatası"))
    response = _check()
    _assert_problem(response, 502)
    assert response.body["code"] == code
    assert response.body["message"] == "Sistem hatası"
    assert response.body["verified"] is False
    assert len(sandbox.requests) == 1


@pytest.mark.parametrize(
    "scripted",
    [
        ScriptedResponse(status=500, body=b"<html>Internal Server Error</html>"),
        ScriptedResponse(status=503, body=b""),
        ScriptedResponse(status=302, headers={"Location": "https://example.invalid/"}),
        ScriptedResponse(status=429, body=b'{"message": "too many"}'),
        ScriptedResponse(status=200, body=b""),
        ScriptedResponse(status=200, body=b"<html>ok</html>"),
        ScriptedResponse(status=200, body=b"\xff\xfe{}"),
        ScriptedResponse(status=200, body=b'{"message": "no code"}'),
        ScriptedResponse(status=200, body=b'{"code": "abc", "message": "x"}'),
        ScriptedResponse(status=200, body=b'{"code": true, "message": "x"}'),
        ScriptedResponse(status=200, body=b'{"code": 0, "message": 5}'),
        ScriptedResponse(status=200, body=b"[0]"),
        ScriptedResponse(status=200, body=b'{"code": 0, "message": "' + b"a" * 200_000 + b'"}'),
        ScriptedResponse(
            status=200, body=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"}
        ),
        ScriptedResponse(
            status=200,
            body=gzip.compress(b'{"code": 0, "message": "ok"}'),
            headers={"Content-Encoding": "gzip"},
        ),
    ],
    ids=[
        "html-500",
        "empty-503",
        "redirect",
        "429",
        "empty-200",
        "html-200",
        "invalid-utf8",
        "no-code",
        "code-not-integer",
        "code-boolean",
        "message-not-string",
        "array",
        "oversized",
        "broken-gzip",
        "unrequested-gzip",
    ],
)
def test_unusable_response_returns_502(sandbox: PaynetSandbox, scripted: ScriptedResponse) -> None:
    sandbox.enqueue(scripted)
    response = _check()
    _assert_problem(response, 502)
    assert response.body.get("verified") is not True
    assert len(sandbox.requests) == 1


def test_unpaired_surrogate_in_message_replaced(sandbox: PaynetSandbox) -> None:
    sandbox.enqueue(ScriptedResponse(body=b'{"code": 0, "message": "Ba\\ud800ar\\u0131l\\u0131"}'))
    response = _check()
    assert response.status == 200
    assert response.body["message"] == "Ba?ar\u0131l\u0131"
    response.raw["body"].encode("utf-8")  # what the Lambda runtime does; must not raise


def test_dropped_connection_returns_502(sandbox: PaynetSandbox) -> None:
    sandbox.enqueue(ScriptedResponse(action="close"))
    response = _check()
    _assert_problem(response, 502)
    assert len(sandbox.requests) == 1


def test_reset_connection_returns_502(sandbox: PaynetSandbox) -> None:
    sandbox.enqueue(ScriptedResponse(action="reset"))
    response = _check()
    _assert_problem(response, 502)
    assert len(sandbox.requests) == 1


def test_unauthorized_returns_502(sandbox: PaynetSandbox) -> None:
    sandbox.secret_key = "sck_test_someone_else"
    response = _check()
    _assert_problem(response, 502)
    # The stored key did not change, so it is not sent a second time.
    assert len(sandbox.requests) == 1


def test_rotated_key_used_after_401(sandbox: PaynetSandbox, secret_id: str) -> None:
    assert _check().status == 200

    new_key = "sck_test_Rotated/Key+2"
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_id, SecretString=json.dumps({"secret_key": new_key})
    )
    sandbox.secret_key = new_key
    response = _check()

    assert response.status == 200
    keys_sent = [request.headers["authorization"] for request in sandbox.requests]
    assert keys_sent == [f"Basic {TEST_SECRET_KEY}", f"Basic {TEST_SECRET_KEY}", f"Basic {new_key}"]


def test_warm_invocations_reuse_secret_and_connection(
    sandbox: PaynetSandbox, local_aws: LocalAws
) -> None:
    for _ in range(5):
        assert _check().status == 200
    assert local_aws.calls["GetSecretValue"] == 1
    assert sandbox.connection_count == 1
    assert len(sandbox.requests) == 5


def test_slow_paynet_returns_504_in_time(sandbox: PaynetSandbox) -> None:
    # A first invocation creates the AWS clients and reads the secret, which on a loaded machine
    # can take all of the time that the 3 s timeout leaves before the Paynet call.
    assert _check().status == 200
    sandbox.reset()
    sandbox.enqueue(ScriptedResponse(delay_seconds=5.0, body=b'{"code": 0, "message": "late"}'))
    context = FakeLambdaContext(timeout_ms=3_000)
    response, elapsed = invoke_timed(api_event(valid_request()), context)
    _assert_problem(response, 504)
    assert elapsed < 3.0
    assert context.get_remaining_time_in_millis() > 0
    assert len(sandbox.requests) == 1


def test_hanging_paynet_returns_504(
    sandbox: PaynetSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYNET_TIMEOUT_SECONDS", "0.5")
    sandbox.enqueue(ScriptedResponse(action="hang"))
    response = _check()
    _assert_problem(response, 504)
    assert len(sandbox.requests) == 1


def test_unreachable_paynet_returns_502(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port that was just free: nothing listens, so the connection is refused.
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PAYNET_BASE_URL", f"http://127.0.0.1:{port}")
    _assert_problem(_check(), 502)


def test_missing_secret_returns_500(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox
) -> None:
    monkeypatch.setenv("PAYNET_SECRET_ID", "paynet/otp-check/does-not-exist")
    response = _check()
    _assert_problem(response, 500)
    assert "does-not-exist" not in response.body["detail"]
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "secret_string", ["{broken", '{"key": "sck_test_x"}', '{"secret_key": ""}', "sck_test_a b"]
)
def test_malformed_secret_returns_500(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox, secret_string: str
) -> None:
    monkeypatch.setenv("PAYNET_SECRET_ID", create_secret(secret_string))
    response = _check()
    _assert_problem(response, 500)
    assert sandbox.requests == []


def test_missing_setting_returns_500(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYNET_SECRET_ID")
    _assert_problem(_check(), 500)


def test_secret_fault_not_cached(local_aws: LocalAws, sandbox: PaynetSandbox) -> None:
    local_aws.fail("GetSecretValue", AwsErrorReply("AccessDeniedException"))
    _assert_problem(_check(), 500)
    local_aws.fail("GetSecretValue", None)
    assert _check().status == 200
