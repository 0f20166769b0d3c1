"""Logs, metrics and tracing of real runs: what they contain and what they must never contain."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from otp_check.observability import logger
from tests.conftest import TEST_SECRET_KEY
from tests.support.events import api_event, valid_request
from tests.support.invoke import invoke
from tests.support.paynet_sandbox import PaynetSandbox, ScriptedResponse

pytestmark = pytest.mark.usefixtures("function_env")

PHONE = "5324818942"
OTP_CODES = ("ART2", "WRONG9", "Q7Z3X1")


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """The function's log lines, written to a buffer instead of standard output."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous_stream)


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
