"""Failed-check limits, counted in moto's DynamoDB: per session, per phone number, in parallel,
after expiry, and when DynamoDB fails."""

from __future__ import annotations

import io
import threading
import time
from typing import Any

import boto3
import pytest

from otp_check.dependencies import build_verifier
from otp_check.errors import AttemptLimitReachedError, OtpRejectedError
from otp_check.settings import get_settings
from tests.conftest import log_lines, outcome_lines
from tests.support.aws import AwsErrorReply, LocalAws
from tests.support.events import api_event, valid_request
from tests.support.invoke import ApiResponse, invoke, invoke_timed
from tests.support.lambda_context import FakeLambdaContext
from tests.support.paynet_sandbox import PaynetSandbox, ScriptedResponse, paynet_error

SESSION_LIMIT = 5
PHONE_LIMIT = 10
PHONE = "5324818942"
WRONG_CODE = "WRONG9"
LIMIT_PROBLEM = "urn:paynet-otp-check:problem:too-many-attempts"


@pytest.fixture(autouse=True)
def default_limits(function_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Put back the default limits, which function_env raises for the other tests."""
    monkeypatch.setenv("MAX_FAILED_CHECKS_PER_SESSION", str(SESSION_LIMIT))
    monkeypatch.setenv("MAX_FAILED_CHECKS_PER_PHONE", str(PHONE_LIMIT))


def _check(otp_code: str, *, session: str = "123456", phone: str = PHONE) -> ApiResponse:
    request = valid_request(otp_code=otp_code, otp_session_id=session, user_gsm=phone)
    return invoke(api_event(request))


def _assert_limited(response: ApiResponse) -> None:
    assert response.status == 429
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.body["type"] == LIMIT_PROBLEM
    assert response.body["verified"] is False
    assert int(response.headers["Retry-After"]) >= 1


def _table_items(table: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    try:
        items: list[dict[str, Any]] = client.scan(TableName=table)["Items"]
    finally:
        client.close()
    return items


def test_sixth_wrong_check_on_a_session_gets_429(sandbox: PaynetSandbox) -> None:
    for _ in range(SESSION_LIMIT):
        assert _check(WRONG_CODE).status == 422
    assert len(sandbox.requests) == SESSION_LIMIT

    response = _check(WRONG_CODE)
    _assert_limited(response)
    assert "session" in response.body["detail"]
    # The right code is rejected too: the limit is on checks, not on wrong codes.
    _assert_limited(_check("ART2"))
    assert len(sandbox.requests) == SESSION_LIMIT


def test_retry_after_counts_down_to_the_counter_expiry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSION_COUNTER_TTL_SECONDS", "600")
    for _ in range(SESSION_LIMIT):
        _check(WRONG_CODE)
    response = _check(WRONG_CODE)
    _assert_limited(response)
    assert 590 <= int(response.headers["Retry-After"]) <= 600


def test_other_sessions_are_not_limited_by_one_session(sandbox: PaynetSandbox) -> None:
    for _ in range(SESSION_LIMIT):
        _check(WRONG_CODE, session="first")
    _assert_limited(_check(WRONG_CODE, session="first"))
    assert _check("ART2", session="second").status == 200


def test_phone_limit_holds_across_sessions(sandbox: PaynetSandbox) -> None:
    # Two wrong checks on each of five sessions stay under the session limit of 5 and reach the
    # phone limit of 10.
    for session in range(PHONE_LIMIT // 2):
        for _ in range(2):
            assert _check(WRONG_CODE, session=f"session-{session}").status == 422
    assert len(sandbox.requests) == PHONE_LIMIT

    response = _check("ART2", session="a-new-session")
    _assert_limited(response)
    assert "phone number" in response.body["detail"]
    assert len(sandbox.requests) == PHONE_LIMIT
    # Another phone number is not affected.
    assert _check("ART2", session="a-new-session", phone="5051234567").status == 200


def test_phone_limit_does_not_count_against_the_session(sandbox: PaynetSandbox) -> None:
    for session in range(PHONE_LIMIT // 2):
        for _ in range(2):
            _check(WRONG_CODE, session=f"session-{session}")
    _assert_limited(_check(WRONG_CODE, session="fresh"))
    # The refused check is given back to its session: with another phone number, it still has
    # its full five checks.
    for _ in range(SESSION_LIMIT):
        assert _check(WRONG_CODE, session="fresh", phone="5051234567").status == 422
    _assert_limited(_check(WRONG_CODE, session="fresh", phone="5051234567"))


def test_verified_session_keeps_reaching_paynet(sandbox: PaynetSandbox) -> None:
    for _ in range(SESSION_LIMIT - 1):
        _check(WRONG_CODE)
    assert _check("ART2").status == 200
    # Counting ended with the success: more checks than the limit still reach Paynet.
    for _ in range(SESSION_LIMIT):
        assert _check(WRONG_CODE).status == 422
    assert _check("ART2").status == 200
    assert len(sandbox.requests) == 2 * SESSION_LIMIT + 1


def test_verified_check_does_not_reset_the_phone_counter(sandbox: PaynetSandbox) -> None:
    for session in range(4):
        for _ in range(2):
            _check(WRONG_CODE, session=f"session-{session}")
    assert _check("ART2", session="session-4").status == 200
    # 8 failed checks so far: two more reach the limit, though one check succeeded between.
    assert _check(WRONG_CODE, session="session-5").status == 422
    assert _check(WRONG_CODE, session="session-5").status == 422
    _assert_limited(_check("ART2", session="session-6"))


def _set_expiry(table: str, expires_at: int) -> None:
    """Move the expiry time of every counter in ``table``, as if they had been made earlier."""
    client = boto3.client("dynamodb")
    try:
        for item in client.scan(TableName=table)["Items"]:
            client.update_item(
                TableName=table,
                Key={"pk": item["pk"]},
                UpdateExpression="SET expires_at = :expires_at",
                ExpressionAttributeValues={":expires_at": {"N": str(expires_at)}},
            )
    finally:
        client.close()


def test_counters_expire(attempts_table: str, sandbox: PaynetSandbox) -> None:
    for _ in range(SESSION_LIMIT):
        _check(WRONG_CODE)
    _assert_limited(_check(WRONG_CODE))

    # The counters' time has passed, but DynamoDB's TTL, which deletes items within days, has
    # not removed them yet. The function must treat them as absent.
    _set_expiry(attempts_table, int(time.time()) - 1)
    assert _check("ART2").status == 200
    assert len(sandbox.requests) == SESSION_LIMIT + 1
    counts = sorted(int(item["checks"]["N"]) for item in _table_items(attempts_table))
    # Both counters started afresh: the session's 1 check stays, the phone's was given back.
    assert counts == [0, 1]


def test_counters_still_limit_until_expiry(attempts_table: str, sandbox: PaynetSandbox) -> None:
    for _ in range(SESSION_LIMIT):
        _check(WRONG_CODE)
    _set_expiry(attempts_table, int(time.time()) + 5)
    response = _check("ART2")
    _assert_limited(response)
    assert int(response.headers["Retry-After"]) <= 5


def test_counters_carry_the_ttl_attribute(attempts_table: str) -> None:
    _check(WRONG_CODE)
    items = _table_items(attempts_table)
    assert len(items) == 2  # one session counter, one phone counter
    now = time.time()
    for item in items:
        assert now < int(item["expires_at"]["N"]) <= now + 3600 + 1


def test_table_stores_no_clear_values(attempts_table: str) -> None:
    session = "session-8421"
    _check(WRONG_CODE, session=session)
    _check("ART2", session=session)
    items = _table_items(attempts_table)
    stored = repr(items)
    assert items
    for clear_text in (PHONE, PHONE[-4:] + PHONE[:6], session, WRONG_CODE, "ART2"):
        assert clear_text not in stored
    keys = sorted(item["pk"]["S"] for item in items)
    assert [key.split("#")[0] for key in keys] == ["phone", "session"]
    for key in keys:
        assert len(key.split("#")[1]) == 64  # a SHA-256 HMAC in hex


def _verify_in_parallel(count: int) -> list[BaseException | None]:
    """Check one session's wrong OTP ``count`` times at once, each on its own verifier.

    Each verifier stands for one Lambda instance, with its own connections.
    """
    verifiers = [build_verifier(get_settings()) for _ in range(count)]
    barrier = threading.Barrier(count)
    outcomes: list[BaseException | None] = [None] * count
    payload = {"user_gsm": PHONE, "otp_session_id": "parallel", "otp_code": WRONG_CODE}

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            verifiers[index].verify(payload, deadline=time.monotonic() + 30)
        except Exception as exc:  # noqa: BLE001 - every outcome is collected and checked
            outcomes[index] = exc

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for verifier in verifiers:
        verifier.close()
    assert not any(thread.is_alive() for thread in threads)
    return outcomes


def test_parallel_wrong_checks_stop_at_the_limit(sandbox: PaynetSandbox) -> None:
    outcomes = _verify_in_parallel(20)

    assert len(sandbox.requests) <= SESSION_LIMIT
    rejected = [exc for exc in outcomes if isinstance(exc, OtpRejectedError)]
    limited = [exc for exc in outcomes if isinstance(exc, AttemptLimitReachedError)]
    assert len(rejected) == len(sandbox.requests) == SESSION_LIMIT
    assert len(limited) == 20 - SESSION_LIMIT


@pytest.mark.parametrize(
    "operation", ["UpdateItem", "PutItem"], ids=["counting fails", "nothing else fails"]
)
def test_dynamodb_failure_fails_closed(
    local_aws: LocalAws, sandbox: PaynetSandbox, log_output: io.StringIO, operation: str
) -> None:
    local_aws.fail(operation, AwsErrorReply("AccessDeniedException"))
    response = _check("ART2")
    if operation == "PutItem":
        # PutItem only restarts expired counters, so its failure does not touch this check.
        assert response.status == 200
        return

    assert response.status == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.body["type"] == "urn:paynet-otp-check:problem:attempt-store-unavailable"
    assert sandbox.requests == []
    (outcome,) = outcome_lines(log_output)
    assert outcome["level"] == "ERROR"
    assert outcome["error_code"] == "AccessDeniedException"

    local_aws.fail(operation, None)
    assert _check("ART2").status == 200


def test_dynamodb_failure_fails_open_when_configured(
    monkeypatch: pytest.MonkeyPatch,
    local_aws: LocalAws,
    sandbox: PaynetSandbox,
    log_output: io.StringIO,
) -> None:
    monkeypatch.setenv("ATTEMPT_STORE_FAILURE_MODE", "open")
    local_aws.fail("UpdateItem", AwsErrorReply("InternalServerError", status=500))

    assert _check("ART2").status == 200
    assert _check(WRONG_CODE).status == 422
    assert len(sandbox.requests) == 2
    warnings = [
        line
        for line in log_lines(log_output)
        if line["message"] == "Attempt store failed, checking without a limit"
    ]
    assert len(warnings) == 2
    assert all(line["level"] == "WARNING" for line in warnings)
    assert warnings[0]["error_code"] == "InternalServerError"


def test_missing_table_fails_closed(
    monkeypatch: pytest.MonkeyPatch, sandbox: PaynetSandbox, log_output: io.StringIO
) -> None:
    monkeypatch.setenv("ATTEMPTS_TABLE_NAME", "no-such-table")
    assert _check("ART2").status == 503
    assert sandbox.requests == []
    (outcome,) = outcome_lines(log_output)
    assert outcome["error_code"] == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "paynet_failure",
    [
        ScriptedResponse(status=500, body=b"<html>Service Unavailable</html>"),
        paynet_error(401, "authorization_error", 5, "Yetkisiz erişim"),
    ],
    ids=["http-500", "http-401"],
)
def test_paynet_failure_gives_the_check_back(
    sandbox: PaynetSandbox, paynet_failure: ScriptedResponse
) -> None:
    # Paynet returned an HTTP error, so it did not check these OTPs, and they are not
    # failed checks.
    for _ in range(SESSION_LIMIT + 2):
        sandbox.enqueue(paynet_failure)
        assert _check(WRONG_CODE).status == 502
    for _ in range(SESSION_LIMIT):
        assert _check(WRONG_CODE).status == 422
    _assert_limited(_check(WRONG_CODE))


def test_dropped_connection_keeps_the_count(sandbox: PaynetSandbox) -> None:
    # The request reached Paynet, which may have checked the OTP before the connection dropped.
    for _ in range(SESSION_LIMIT):
        sandbox.enqueue(ScriptedResponse(action="close"))
        assert _check(WRONG_CODE).status == 502
    _assert_limited(_check(WRONG_CODE))


def test_other_phone_numbers_cannot_lock_a_session(sandbox: PaynetSandbox) -> None:
    # An attacker with a known session id sends wrong OTPs for it with other phone numbers.
    for index in range(SESSION_LIMIT + 1):
        _check(WRONG_CODE, phone=f"50512345{index:02d}")
    # The session's own phone number still has all of its checks.
    assert _check("ART2").status == 200


def test_verified_session_lifts_no_limit_for_other_phones(sandbox: PaynetSandbox) -> None:
    assert _check("ART2", phone="5051234567").status == 200
    for _ in range(SESSION_LIMIT):
        assert _check(WRONG_CODE).status == 422
    _assert_limited(_check(WRONG_CODE))


def test_slow_settling_ends_within_the_lambda_timeout(
    local_aws: LocalAws, sandbox: PaynetSandbox, log_output: io.StringIO
) -> None:
    # Paynet responds late, and the writes after it hang. Both must fit into the invocation.
    sandbox.enqueue(ScriptedResponse(body=b'{"code": 0, "message": "ok"}', delay_seconds=1.5))
    local_aws.delay("UpdateItem", 3, body_contains="verified")
    local_aws.delay("UpdateItem", 3, body_contains="checks - :one")
    context = FakeLambdaContext(timeout_ms=5_000)

    response, elapsed = invoke_timed(api_event(valid_request()), context)

    assert response.status == 200
    assert elapsed < 5.0
    warnings = [
        line for line in log_lines(log_output) if line["message"] == "Attempt counter update failed"
    ]
    assert warnings
    assert all(line["level"] == "WARNING" for line in warnings)


def test_release_is_not_retried(local_aws: LocalAws, sandbox: PaynetSandbox) -> None:
    # A release that times out may still have been applied, so sending it again could give back
    # two checks for one.
    sandbox.enqueue(ScriptedResponse(status=500, body=b"<html>down</html>"))
    local_aws.delay("UpdateItem", 1, body_contains="checks - :one")
    assert _check(WRONG_CODE).status == 502
    # One counting update per counter, then one release per counter, each sent once.
    assert local_aws.calls["UpdateItem"] == 4
