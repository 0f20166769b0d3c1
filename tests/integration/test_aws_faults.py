"""Faults on the AWS side: Secrets Manager errors, an unreachable endpoint, malformed secrets."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import boto3
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.support.aws import AwsErrorReply, LocalAws, local_aws_server
from tests.support.events import api_event, valid_request
from tests.support.invoke import ApiResponse, invoke
from tests.support.paynet_sandbox import PaynetSandbox

pytestmark = pytest.mark.usefixtures("function_env")

GENERIC_DETAIL = "The service could not check the OTP. The OTP was not verified."


def _outcome_line(buffer: io.StringIO) -> dict[str, Any]:
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    (line,) = [line for line in lines if line["message"] == "OTP check finished"]
    return line


def _assert_generic_500(response: ApiResponse) -> None:
    assert response.status == 500
    assert response.body["type"] == "urn:paynet-otp-check:problem:internal-error"
    assert response.body["detail"] == GENERIC_DETAIL


@pytest.mark.parametrize(
    ("reply", "error_code"),
    [
        (AwsErrorReply("ResourceNotFoundException"), "ResourceNotFoundException"),
        (AwsErrorReply("AccessDeniedException"), "AccessDeniedException"),
        (AwsErrorReply("ThrottlingException"), "ThrottlingException"),
        (AwsErrorReply("InternalServiceError", status=500), "InternalServiceError"),
        (AwsErrorReply("KMSAccessDeniedException"), "KMSAccessDeniedException"),
    ],
)
def test_secret_error_returns_500_then_recovers(
    local_aws: LocalAws,
    sandbox: PaynetSandbox,
    log_output: io.StringIO,
    reply: AwsErrorReply,
    error_code: str,
) -> None:
    local_aws.fail("GetSecretValue", reply)
    _assert_generic_500(invoke(api_event(valid_request())))
    line = _outcome_line(log_output)
    assert line["outcome"] == "error"
    assert line["error_code"] == error_code
    assert sandbox.requests == []

    local_aws.fail("GetSecretValue", None)
    assert invoke(api_event(valid_request())).status == 200
    assert len(sandbox.requests) == 1


def test_unreachable_secrets_manager_recovers(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: PaynetSandbox,
    secret_id: str,
    attempts_table: str,
    log_output: io.StringIO,
) -> None:
    # A second local AWS server: started to learn a free port, stopped so that nothing
    # listens there, then started again on the same port.
    environ: dict[str, str] = {}
    with local_aws_server(environ):
        endpoint_url = environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"]
    port = int(endpoint_url.rsplit(":", 1)[1])
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endpoint_url)

    response = invoke(api_event(valid_request()))
    _assert_generic_500(response)
    assert _outcome_line(log_output)["error_code"] == "EndpointConnectionError"

    with local_aws_server(environ, port=port):
        # The new server process starts empty, so the secret is stored again.
        client = boto3.client("secretsmanager", endpoint_url=endpoint_url)
        secret = json.dumps({"secret_key": TEST_SECRET_KEY})
        client.create_secret(Name=secret_id, SecretString=secret)
        client.close()
        assert invoke(api_event(valid_request())).status == 200
    assert len(sandbox.requests) == 1


def _store_secret(monkeypatch: pytest.MonkeyPatch, **value: Any) -> None:
    name = f"paynet/otp-check/malformed-{os.urandom(4).hex()}"
    boto3.client("secretsmanager").create_secret(Name=name, **value)
    monkeypatch.setenv("PAYNET_SECRET_ID", name)


@pytest.mark.parametrize(
    "value",
    [
        {"SecretString": '{"secret_key": "sck_test_leakcheck_1", '},
        {"SecretString": '{"key": "sck_test_leakcheck_2"}'},
        {"SecretString": '{"secret_key": ""}'},
        {"SecretString": " "},
        {"SecretString": "sck_test_leakcheck_3 trailing"},
        {"SecretBinary": b"sck_test_leakcheck_4"},
    ],
    ids=["broken-json", "no-secret-key", "empty-key", "blank", "whitespace", "binary"],
)
def test_malformed_secret_logged_without_content(
    monkeypatch: pytest.MonkeyPatch,
    sandbox: PaynetSandbox,
    log_output: io.StringIO,
    value: dict[str, Any],
) -> None:
    _store_secret(monkeypatch, **value)
    response = invoke(api_event(valid_request()))

    _assert_generic_500(response)
    line = _outcome_line(log_output)
    assert line["error_kind"] == "ConfigurationError"
    assert "Paynet secret" in line["error"]
    assert "leakcheck" not in log_output.getvalue()
    assert "leakcheck" not in json.dumps(response.raw)
    assert sandbox.requests == []


def test_corrected_secret_used_on_the_next_invocation(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox
) -> None:
    _store_secret(monkeypatch, SecretString='{"key": "sck_test_wrong_member"}')
    _assert_generic_500(invoke(api_event(valid_request())))

    # The operator fixes the secret. The malformed value was not cached, so the default cache
    # period of 300 s does not delay the fix.
    client = boto3.client("secretsmanager")
    secret = json.dumps({"secret_key": TEST_SECRET_KEY})
    client.put_secret_value(SecretId=os.environ["PAYNET_SECRET_ID"], SecretString=secret)
    client.close()
    assert invoke(api_event(valid_request())).status == 200
    assert len(sandbox.requests) == 1


def test_bare_key_secret_accepted(monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox) -> None:
    _store_secret(monkeypatch, SecretString=TEST_SECRET_KEY)
    assert invoke(api_event(valid_request())).status == 200
    assert sandbox.requests[0].headers["authorization"] == f"Basic {TEST_SECRET_KEY}"


def test_secret_fetched_again_after_max_age(
    monkeypatch: pytest.MonkeyPatch, local_aws: LocalAws
) -> None:
    monkeypatch.setenv("PAYNET_SECRET_MAX_AGE_SECONDS", "0")
    for _ in range(3):
        assert invoke(api_event(valid_request())).status == 200
    assert local_aws.calls["GetSecretValue"] == 3
