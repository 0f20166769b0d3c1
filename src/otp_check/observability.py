"""The one Logger, Tracer and Metrics of the function."""

from __future__ import annotations

import logging
import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = os.environ.get("POWERTOOLS_SERVICE_NAME") or "paynet-otp-check"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "PaynetOtpCheck"

logger = Logger(service=SERVICE_NAME)
tracer = Tracer(service=SERVICE_NAME)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE_NAME)

# The Lambda runtime sets the root logger to the function's log level. At DEBUG, botocore logs
# whole response bodies, the secret value included, and urllib3 logs every request line. These
# libraries therefore log warnings and errors only, whatever the function's level is.
for _library in ("boto3", "botocore", "urllib3"):
    logging.getLogger(_library).setLevel(logging.WARNING)


def mask_phone_number(user_gsm: str) -> str:
    """Keep only the last 4 digits of a phone number, for logs."""
    return "*" * max(len(user_gsm) - 4, 0) + user_gsm[-4:]
