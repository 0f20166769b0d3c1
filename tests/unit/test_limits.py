"""Attempt limits in the OTP-check domain, with an in-memory attempt store."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from otp_check.errors import (
    AttemptLimitReachedError,
    AttemptStoreError,
    OtpRejectedError,
    PaynetConnectionDroppedError,
    PaynetError,
    PaynetHTTPError,
    PaynetTimeoutError,
)
from otp_check.limits import AttemptLimiter, AttemptPolicy
from otp_check.paynet import PaynetResult
from otp_check.verification import OtpVerifier
from tests.unit.test_verification import PAYLOAD, FakePaynet, FakeSecretKeys

KEY = "sck_test_limits"


@dataclass
class MemoryAttemptStore:
    """Counters in a dict, with no expiry. ``failing`` makes every call raise."""

    counts: dict[str, int] = field(default_factory=dict)
    verified: set[str] = field(default_factory=set)
    failing: bool = False

    def reserve(self, counter: str, *, limit: int, ttl_seconds: int, scope: str) -> None:
        self._check()
        if self.counts.get(counter, 0) >= limit and counter not in self.verified:
            raise AttemptLimitReachedError(scope, retry_after_seconds=ttl_seconds)
        self.counts[counter] = self.counts.get(counter, 0) + 1

    def release(self, counter: str) -> None:
        self._check()
        if self.counts.get(counter, 0) > 0:
            self.counts[counter] -= 1

    def mark_verified(self, counter: str, *, ttl_seconds: int) -> None:
        self._check()
        self.verified.add(counter)

    def close(self) -> None:
        pass

    def _check(self) -> None:
        if self.failing:
            raise AttemptStoreError("DynamoDB failed", error_code="InternalServerError")

    def by_kind(self) -> dict[str, int]:
        return {counter.split("#")[0]: count for counter, count in self.counts.items()}


def _verifier(
    store: MemoryAttemptStore, results: list[PaynetResult | PaynetError], **policy: object
) -> tuple[OtpVerifier, FakePaynet]:
    paynet = FakePaynet(results)
    limiter = AttemptLimiter(store, AttemptPolicy(**policy))  # type: ignore[arg-type]
    return OtpVerifier(paynet, FakeSecretKeys(KEY, KEY), limiter), paynet


def test_rejection_keeps_both_counts() -> None:
    store = MemoryAttemptStore()
    verifier, _ = _verifier(store, [PaynetResult(1, "Hatalı")])
    with pytest.raises(OtpRejectedError):
        verifier.verify(PAYLOAD, deadline=1e12)
    assert store.by_kind() == {"session": 1, "phone": 1}


def test_verified_check_gives_phone_count_back() -> None:
    store = MemoryAttemptStore()
    verifier, _ = _verifier(store, [PaynetResult(0, "Başarılı")])
    verifier.verify(PAYLOAD, deadline=1e12)
    assert store.by_kind() == {"session": 1, "phone": 0}
    assert len(store.verified) == 1


@pytest.mark.parametrize(
    ("failure", "counted"),
    [
        (PaynetHTTPError("HTTP 500", status=500), 0),
        (PaynetTimeoutError("connect timed out", request_sent=False), 0),
        (PaynetTimeoutError("no response in time"), 1),
        (PaynetConnectionDroppedError("dropped"), 1),
    ],
    ids=["http-error", "timeout-before-send", "timeout-after-send", "dropped"],
)
def test_paynet_failure_counts(failure: PaynetError, counted: int) -> None:
    store = MemoryAttemptStore()
    verifier, _ = _verifier(store, [failure])
    with pytest.raises(type(failure)):
        verifier.verify(PAYLOAD, deadline=1e12)
    assert store.by_kind() == {"session": counted, "phone": counted}


def test_limit_reached_skips_paynet() -> None:
    store = MemoryAttemptStore()
    verifier, paynet = _verifier(store, [PaynetResult(1, "Hatalı")] * 2, max_checks_per_session=2)
    for _ in range(2):
        with pytest.raises(OtpRejectedError):
            verifier.verify(PAYLOAD, deadline=1e12)
    with pytest.raises(AttemptLimitReachedError) as caught:
        verifier.verify(PAYLOAD, deadline=1e12)
    assert caught.value.scope == "session"
    assert len(paynet.keys_used) == 2


def test_phone_limit_gives_session_count_back() -> None:
    store = MemoryAttemptStore()
    verifier, paynet = _verifier(store, [], max_checks_per_phone=0)
    with pytest.raises(AttemptLimitReachedError) as caught:
        verifier.verify(PAYLOAD, deadline=1e12)
    assert caught.value.scope == "phone number"
    assert store.by_kind() == {"session": 0}
    assert paynet.keys_used == []


def test_store_failure_fails_closed() -> None:
    store = MemoryAttemptStore(failing=True)
    verifier, paynet = _verifier(store, [PaynetResult(0, "Başarılı")])
    with pytest.raises(AttemptStoreError):
        verifier.verify(PAYLOAD, deadline=1e12)
    assert paynet.keys_used == []


def test_store_failure_fails_open_when_chosen() -> None:
    store = MemoryAttemptStore(failing=True)
    verifier, paynet = _verifier(store, [PaynetResult(0, "Başarılı")], fail_open=True)
    assert verifier.verify(PAYLOAD, deadline=1e12).code == 0
    assert paynet.keys_used == [KEY]
