"""Fixtures that run the function against real servers on loopback.

The Paynet sandbox is a real HTTP server and Secrets Manager is moto's server, reached through
boto3's ``AWS_ENDPOINT_URL_SECRETS_MANAGER``. Nothing inside urllib3 or boto3 is replaced.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import boto3
import pytest

from tests.support.aws import CountingAwsApp, local_secrets_manager
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
    "POWERTOOLS_LOGGER_LOG_EVENT",
    "POWERTOOLS_LOG_LEVEL",
    "AWS_LAMBDA_LOG_LEVEL",
)


@pytest.fixture(scope="session")
def _aws_server() -> Iterator[tuple[CountingAwsApp, dict[str, str]]]:
    environ: dict[str, str] = {}
    with local_secrets_manager(environ) as aws:
        yield aws, environ


@pytest.fixture
def local_aws(
    _aws_server: tuple[CountingAwsApp, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> CountingAwsApp:
    """moto's Secrets Manager, with this test's environment pointing boto3 at it."""
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
def secret_id(local_aws: CountingAwsApp) -> str:
    name = create_secret(json.dumps({"secret_key": TEST_SECRET_KEY}))
    local_aws.reset()
    return name


@pytest.fixture
def function_env(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox, secret_id: str
) -> Iterator[None]:
    """Configure the function for the sandbox and the secret, starting from a cold instance."""
    for name in _FUNCTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PAYNET_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("PAYNET_SECRET_ID", secret_id)
    start_cold()
    yield
    start_cold()
