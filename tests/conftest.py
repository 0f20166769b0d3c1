"""Fixtures that run the function against real servers on loopback.

The Paynet sandbox is a real HTTP server. Secrets Manager and DynamoDB are moto's server,
reached through boto3's ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and ``AWS_ENDPOINT_URL_DYNAMODB``.
Nothing inside urllib3 or boto3 is replaced.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from otp_check.observability import logger
from tests.support.aws import LocalAws, create_attempts_table, local_aws_server
from tests.support.invoke import start_cold
from tests.support.paynet_sandbox import PaynetSandbox

# A made-up key in Paynet's format, with the "/" and "+" that real keys may contain.
TEST_SECRET_KEY = "sck_test_Zq3/u+Vx9LmN2pQ8rT5wY1kA"

_FUNCTION_VARIABLES = (
    "PAYNET_BASE_URL",
    "PAYNET_SECRET_ID",
    "PAYNET_TIMEOUT_SECONDS",
    "PAYNET_CONNECT_TIMEOUT_SECONDS",
    "PAYNET_SECRET_MAX_AGE_SECONDS",
    "PAYNET_CA_BUNDLE",
    "ATTEMPTS_TABLE_NAME",
    "MAX_FAILED_CHECKS_PER_SESSION",
    "MAX_FAILED_CHECKS_PER_PHONE",
    "PHONE_LIMIT_WINDOW_SECONDS",
    "SESSION_COUNTER_TTL_SECONDS",
    "ATTEMPT_STORE_FAILURE_MODE",
    "CORS_ALLOWED_ORIGINS",
    "POWERTOOLS_LOGGER_LOG_EVENT",
    "POWERTOOLS_LOG_LEVEL",
    "AWS_LAMBDA_LOG_LEVEL",
)


@pytest.fixture(scope="session")
def _aws_server() -> Iterator[tuple[LocalAws, dict[str, str]]]:
    environ: dict[str, str] = {}
    with local_aws_server(environ) as aws:
        yield aws, environ


@pytest.fixture
def local_aws(
    _aws_server: tuple[LocalAws, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> LocalAws:
    """moto's Secrets Manager and DynamoDB, with this test's environment pointing boto3 at them."""
    aws, environ = _aws_server
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    aws.reset()
    return aws


@pytest.fixture
def sandbox() -> Iterator[PaynetSandbox]:
    with PaynetSandbox(TEST_SECRET_KEY) as paynet:
        yield paynet


def create_secret(secret_string: str) -> str:
    """Store a secret under a new name and return the name."""
    name = f"paynet/otp-check/{uuid.uuid4()}"
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=secret_string)
    return name


@pytest.fixture
def secret_id(local_aws: LocalAws) -> str:
    name = create_secret(json.dumps({"secret_key": TEST_SECRET_KEY}))
    local_aws.reset()
    return name


@pytest.fixture
def attempts_table(local_aws: LocalAws) -> str:
    """A new, empty attempt-counter table, so that no test inherits another's counts."""
    name = f"attempts-{uuid.uuid4()}"
    create_attempts_table(name)
    local_aws.reset()
    return name


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox, secret_id: str, attempts_table: str
) -> Iterator[None]:
    """Configure the function for the sandbox, the secret and the table, starting cold."""
    for name in _FUNCTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAYNET_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PAYNET_SECRET_ID", secret_id)
    monkeypatch.setenv("ATTEMPTS_TABLE_NAME", attempts_table)
    # The default of 5 failed checks per session would stop tests that send many wrong codes
    # with the same session id. The limit tests set their own values.
    monkeypatch.setenv("MAX_FAILED_CHECKS_PER_SESSION", "100")
    monkeypatch.setenv("MAX_FAILED_CHECKS_PER_PHONE", "1000")
    start_cold()
    yield
    start_cold()


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The function's log lines, written to a buffer instead of standard output."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous_stream)


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The JSON log lines written to ``buffer``, parsed."""
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]


def outcome_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    """The "OTP check finished" lines written to ``buffer``: one for each request."""
    return [line for line in log_lines(buffer) if line["message"] == "OTP check finished"]
