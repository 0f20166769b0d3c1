"""Import the built function with python3.13 and invoke it on events that need no AWS call.

Run as ``python3.13 -I -S -B .ci/smoke_test_build.py BUILD_DIR HOST_NATIVE_DIR RUNTIME_DIR``.
-S leaves out every site-packages directory, so a package that the build forgot fails the
import instead of being found in the interpreter's own site-packages. The path is then:

- HOST_NATIVE_DIR: the bundled distributions that have native extensions, in the same
  versions but built for this machine, because the bundled ones are built for arm64 and
  cannot load here;
- BUILD_DIR: the function package from .aws-sam/build;
- RUNTIME_DIR: boto3 and botocore with their own dependencies, in place of the Lambda
  runtime's copies. Lambda too puts the function package before the runtime's packages.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Top-level modules that may come from RUNTIME_DIR: the runtime's boto3 and botocore, and
# those dependencies of botocore that the function does not bundle itself.
RUNTIME_MODULES = {"boto3", "botocore", "s3transfer", "dateutil", "six"}
# Events that the function handles without calling Secrets Manager, DynamoDB or Paynet.
EXPECTED_STATUS = {
    "check_otp_invalid_gsm.json": 400,
    "check_otp_empty_body.json": 400,
    "unknown_route.json": 404,
}


class LambdaContext:
    """The attributes of the Lambda context that Powertools and the handler read."""

    function_name = "paynet-otp-check"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:paynet-otp-check"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def main() -> int:
    # absolute() and not resolve(): the runtime directory contains symbolic links, and module
    # paths keep the directory that they were found in.
    build_dir, host_native_dir, runtime_dir = (Path(arg).absolute() for arg in sys.argv[1:4])
    sys.path[:0] = [str(host_native_dir), str(build_dir), str(runtime_dir)]
    # The local settings of `sam local invoke`: valid values that point at no real system.
    env_vars = json.loads((ROOT / "events" / "env.json").read_text("utf-8"))
    os.environ.update(env_vars["OtpCheckFunction"])
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-central-1")

    # Powertools Tracer imports the X-Ray SDK only when tracing is on, as it is in Lambda.
    import aws_xray_sdk.core  # noqa: F401

    from otp_check.handler import lambda_handler

    failures = []
    for name, expected_status in EXPECTED_STATUS.items():
        event: dict[str, Any] = json.loads((ROOT / "events" / name).read_text("utf-8"))
        response = lambda_handler(event, LambdaContext())
        if response["statusCode"] != expected_status:
            failures.append(f"{name} returned {response['statusCode']}, not {expected_status}")

    failures.extend(check_module_origins(build_dir, host_native_dir, runtime_dir))
    for failure in failures:
        print(f"smoke test failed: {failure}", file=sys.stderr)
    if not failures:
        version = sys.version.split()[0]
        print(f"smoke test passed: the built function handles events on Python {version}")
    return 1 if failures else 0


def check_module_origins(build_dir: Path, host_native_dir: Path, runtime_dir: Path) -> list[str]:
    """Check that RUNTIME_DIR supplied only the runtime's packages."""
    failures = []
    for name, module in sorted(sys.modules.items()):
        location = getattr(module, "__file__", None)
        if location is None:
            continue
        path = Path(os.path.abspath(location))
        top_level = name.partition(".")[0]
        if path.is_relative_to(runtime_dir) and top_level not in RUNTIME_MODULES:
            failures.append(f"{name} was imported from the runtime's packages, not the build")
        if not path.is_relative_to(build_dir) and top_level == "otp_check":
            failures.append(f"{name} was imported from {path}, not the build")
    return failures


if __name__ == "__main__":
    sys.exit(main())
