"""One cold start of the function, timed by phase, for bench/run.py.

Run as a script in a fresh interpreter: ``python bench/cold_start.py EVENT_FILE REPORT_FILE``.
The environment must point the function at running stand-ins. The script writes the
``time.monotonic()`` value at the end of each phase to REPORT_FILE as JSON. CLOCK_MONOTONIC is
shared by every process on Linux, so the parent can subtract the time it started this process.
"""

import time

started = time.monotonic()

# The imports below are what is timed, so they stay after the first clock reading.
import json  # noqa: E402
import sys  # noqa: E402

from otp_check import handler  # noqa: E402
from otp_check.dependencies import get_verifier  # noqa: E402
from otp_check.settings import get_settings  # noqa: E402

imported = time.monotonic()


class _Context:
    """The LambdaContext attributes that Powertools and the handler read."""

    function_name = "paynet-otp-check"
    memory_limit_in_mb = 512
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:paynet-otp-check"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def main() -> None:
    event_path, report_path = sys.argv[1], sys.argv[2]
    with open(event_path, encoding="utf-8") as event_file:
        event = json.load(event_file)

    get_settings()
    settings_read = time.monotonic()
    # Builds the Paynet pool, the Secrets Manager client and both DynamoDB clients, and starts
    # the Paynet connection when the function opens it during init.
    verifier = get_verifier()
    clients_built = time.monotonic()
    verifier._secret_keys.get_secret_key()
    secret_fetched = time.monotonic()
    response = handler.lambda_handler(event, _Context())
    responded = time.monotonic()

    report = {
        "started": started,
        "imported": imported,
        "settings_read": settings_read,
        "clients_built": clients_built,
        "secret_fetched": secret_fetched,
        "responded": responded,
        "status": response["statusCode"],
    }
    with open(report_path, "w", encoding="utf-8") as report_file:
        json.dump(report, report_file)


main()
