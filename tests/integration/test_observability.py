"""Logs, metrics and tracing of real runs: what they contain and what they must never contain."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from otp_check.observability import logger
from tests.conftest import TEST_SECRET_KEY
from tests.support.aws import REPOSITORY_ROOT
from tests.support.events import api_event, valid_request
from tests.support.invoke import invoke
from tests.support.paynet_sandbox import PaynetSandbox, ScriptedResponse, paynet_error

pytestmark = pytest.mark.usefixtures("function_env")

PHONE = "5324818942"
OTP_CODES = ("ART2", "WRONG9", "Q7Z3X1")


@pytest.fixture
def debug_logging(monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO) -> Iterator[None]:
    """Log at DEBUG everywhere, with event logging asked for, as a careless operator might.

    The root handler plays the part of the Lambda runtime's, which prints every library's records.
    """
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    root = logging.getLogger()
    handler = logging.StreamHandler(log_output)
    previous_root_level, previous_level = root.level, logger.log_level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    yield
    logger.setLevel(previous_level)
    root.setLevel(previous_root_level)
    root.removeHandler(handler)


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _outcome_lines(text: str) -> list[dict[str, Any]]:
    return [line for line in _json_lines(text) if line.get("message") == "OTP check finished"]


@pytest.mark.usefixtures("debug_logging")
def test_logs_hold_no_otp_key_or_phone(
    capfd: pytest.CaptureFixture[str], log_output: io.StringIO, sandbox: PaynetSandbox
) -> None:
    logging.getLogger("tests.probe").debug("DEBUG records reach the root handler")
    logging.getLogger("botocore.probe").debug("botocore DEBUG records reach the root handler")
    invoke(api_event(valid_request(otp_code="ART2")))
    invoke(api_event(valid_request(otp_code="WRONG9")))
    invoke(api_event(valid_request(otp_code="Q7Z3X1", user_gsm="12")))
    sandbox.enqueue(ScriptedResponse(status=500, body=b"<html>down</html>"))
    invoke(api_event(valid_request(otp_code="ART2")))

    output = log_output.getvalue() + "".join(capfd.readouterr())
    assert len(_outcome_lines(output)) == 4
    assert "DEBUG records reach the root handler" in output
    for code in OTP_CODES:
        assert code not in output
    assert TEST_SECRET_KEY not in output
    assert PHONE not in output
    assert "botocore DEBUG records" not in output


# Run in a new interpreter, because Powertools reads its debug switches when it is imported
# and when the resolver is built.
_DEBUG_RUN = """
from tests.support.events import api_event, valid_request
from tests.support.invoke import invoke

for request in (
    valid_request(otp_code="ART2"),
    valid_request(otp_code="WRONG9"),
    valid_request(otp_code="Q7Z3X1", user_gsm="53248189"),
):
    print("STATUS", invoke(api_event(request)).status)
"""


def test_powertools_debug_switches_leak_nothing(sandbox: PaynetSandbox) -> None:
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY_ROOT / "src"), str(REPOSITORY_ROOT)]),
        "POWERTOOLS_DEV": "true",
        "POWERTOOLS_DEBUG": "true",
        "POWERTOOLS_EVENT_HANDLER_DEBUG": "true",
        "POWERTOOLS_LOGGER_LOG_EVENT": "true",
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
    }
    run = subprocess.run(  # noqa: S603 - this interpreter, with a fixed script
        [sys.executable, "-c", _DEBUG_RUN],
        cwd=REPOSITORY_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    output = run.stdout + run.stderr

    statuses = [line for line in run.stdout.splitlines() if line.startswith("STATUS ")]
    assert statuses == ["STATUS 200", "STATUS 422", "STATUS 400"]
    # POWERTOOLS_DEV pretty-prints each log record over several lines.
    assert output.count('"message":"OTP check finished"') == 3
    # POWERTOOLS_DEBUG prints Powertools' own DEBUG records, among them the validated request.
    assert "[DEBUG] Calling API Route Handler" in output
    for code in OTP_CODES:
        assert code not in output
    assert TEST_SECRET_KEY not in output
    assert PHONE not in output
    assert "53248189" not in output
    assert "Traceback" not in output


def test_outcome_line_has_keys(log_output: io.StringIO) -> None:
    event = api_event(valid_request())
    invoke(event)

    (line,) = _outcome_lines(log_output.getvalue())
    assert line["outcome"] == "verified"
    assert line["paynet_code"] == 0
    assert line["paynet_latency_ms"] > 0
    assert line["user_gsm"] == "******8942"
    assert line["correlation_id"] == event["requestContext"]["requestId"]
    assert line["level"] == "INFO"


@pytest.mark.parametrize(
    ("overrides", "outcome", "error_kind"),
    [
        ({"otp_code": "WRONG9"}, "rejected", None),
        ({"user_gsm": "12"}, "invalid_request", "RequestValidationError"),
    ],
)
def test_outcome_line_per_case(
    log_output: io.StringIO,
    overrides: dict[str, str],
    outcome: str,
    error_kind: str | None,
) -> None:
    invoke(api_event(valid_request(**overrides)))
    (line,) = _outcome_lines(log_output.getvalue())
    assert line["outcome"] == outcome
    assert line.get("error_kind") == error_kind


def test_failure_logged_with_kind(log_output: io.StringIO, sandbox: PaynetSandbox) -> None:
    sandbox.enqueue(ScriptedResponse(action="close"))
    invoke(api_event(valid_request()))
    (line,) = _outcome_lines(log_output.getvalue())
    assert line["outcome"] == "failed"
    assert line["error_kind"] == "PaynetConnectionDroppedError"
    assert line["level"] == "ERROR"


def test_keys_do_not_leak_between_invocations(log_output: io.StringIO) -> None:
    invoke(api_event(valid_request()))
    invoke(api_event(raw_body="not json"))
    first, second = _outcome_lines(log_output.getvalue())
    assert "user_gsm" in first
    assert "user_gsm" not in second
    assert "paynet_latency_ms" not in second


def test_metrics_emitted(capfd: pytest.CaptureFixture[str]) -> None:
    invoke(api_event(valid_request()))
    invoke(api_event(valid_request(otp_code="WRONG9")))
    metric_documents = [line for line in _json_lines(capfd.readouterr().out) if "_aws" in line]
    names = set()
    for document in metric_documents:
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "PaynetOtpCheck"
            names.update(metric["Name"] for metric in directive["Metrics"])
    assert {"VerifiedChecks", "RejectedChecks", "PaynetLatency"} <= names


def test_no_tracing_errors_outside_lambda(capfd: pytest.CaptureFixture[str]) -> None:
    invoke(api_event(valid_request()))
    captured = capfd.readouterr()
    output = (captured.out + captured.err).lower()
    assert "xray" not in output
    assert "x-ray" not in output
    assert "segment" not in output


@pytest.mark.parametrize(
    ("sent_type", "logged_type"),
    [("api_error", "api_error"), ("x" * 500 + "\n{forged}", "other")],
    ids=["documented", "unknown"],
)
def test_paynet_error_type_logged_only_when_documented(
    log_output: io.StringIO, sandbox: PaynetSandbox, sent_type: str, logged_type: str
) -> None:
    sandbox.enqueue(paynet_error(500, sent_type, 2, "Sistem hatası"))
    invoke(api_event(valid_request()))
    (line,) = _outcome_lines(log_output.getvalue())
    assert line["paynet_error_type"] == logged_type
    assert line["paynet_result_code"] == 2
