"""Invoke the function once on an API Gateway event, locally, and print its response.

Usage: ``python -m tests.support.local_run [EVENT_FILE]`` (default events/check_otp.json).

The Paynet sandbox and moto's Secrets Manager run on loopback for the length of the run, and a
made-up test key is stored as the secret. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3

from otp_check.dependencies import reset_dependencies
from otp_check.handler import lambda_handler
from tests.support.aws import create_attempts_table, local_aws_server
from tests.support.lambda_context import FakeLambdaContext
from tests.support.paynet_sandbox import PaynetSandbox

SANDBOX_SECRET_KEY = "sck_test_LocalRun/Sandbox+Key0000"
SECRET_NAME = "paynet/otp-check/local"
ATTEMPTS_TABLE_NAME = "paynet-otp-check-attempts-local"


@contextmanager
def local_backends(*, scenarios: bool = False) -> Iterator[PaynetSandbox]:
    """Run the Paynet sandbox and the local AWS server, and point the function at them.

    Stores the made-up test key as the secret, creates the empty attempts table, and sets
    boto3's endpoints and the function's settings in ``os.environ``. ``scenarios`` turns on the
    sandbox's scenario mode.
    """
    with (
        PaynetSandbox(SANDBOX_SECRET_KEY, scenarios=scenarios) as sandbox,
        local_aws_server(os.environ),
    ):
        boto3.client("secretsmanager").create_secret(
            Name=SECRET_NAME, SecretString=json.dumps({"secret_key": SANDBOX_SECRET_KEY})
        )
        create_attempts_table(ATTEMPTS_TABLE_NAME)
        os.environ["PAYNET_BASE_URL"] = sandbox.base_url
        os.environ["PAYNET_SECRET_ID"] = SECRET_NAME
        os.environ["ATTEMPTS_TABLE_NAME"] = ATTEMPTS_TABLE_NAME
        yield sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "event",
        nargs="?",
        default="events/check_otp.json",
        type=Path,
        help="API Gateway REST proxy event (JSON file)",
    )
    args = parser.parse_args(argv)
    event = json.loads(args.event.read_text("utf-8"))

    with local_backends():
        print(f"Invoking the function on {args.event}; its log lines follow.", file=sys.stderr)
        response = lambda_handler(event, FakeLambdaContext())
        reset_dependencies()

    print("\nAPI Gateway response:")
    body = response.get("body")
    # A 204 preflight response has an empty body, which is printed as it is.
    if isinstance(body, str) and body and not response.get("isBase64Encoded"):
        response = {**response, "body": json.loads(body)}
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
