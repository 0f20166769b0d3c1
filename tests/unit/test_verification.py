"""OTP-check domain, with in-memory fakes of the Paynet client and the secret source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pytest

from otp_check.errors import (
    OtpRejectedError,
    PaynetAuthenticationError,
    PaynetError,
    PaynetFailureCodeError,
    PaynetTimeoutError,
)
from otp_check.paynet import PaynetResult
from otp_check.verification import OtpVerifier, classify_result

PAYLOAD = {"user_gsm": "5324818942", "otp_session_id": "1", "otp_code": "ART2"}


@dataclass
class FakePaynet:
    """Returns or raises the queued results in order and records the key of every call."""

    results: list[PaynetResult | PaynetError]
    keys_used: list[str] = field(default_factory=list)

    def check_otp(
        self, payload: Mapping[str, str], *, secret_key: str, deadline: float
    ) -> PaynetResult:
        self.keys_used.append(secret_key)
        result = self.results.pop(0)
        if isinstance(result, PaynetError):
            raise result
        return result

    def close(self) -> None:
        pass


@dataclass
class FakeSecretKeys:
    """Returns ``cached`` until a forced fetch, then ``stored``."""

    cached: str
    stored: str
    forced_fetches: int = 0

    def get_secret_key(self, *, force_fetch: bool = False) -> str:
        if force_fetch:
            self.forced_fetches += 1
            self.cached = self.stored
        return self.cached

    def close(self) -> None:
        pass


def _unauthorized() -> PaynetAuthenticationError:
    return PaynetAuthenticationError("HTTP 401", status=401)


@pytest.mark.parametrize("code", [1, 11, 12])
def test_rejection_codes_raise_rejected(code: int) -> None:
    with pytest.raises(OtpRejectedError) as caught:
        classify_result(PaynetResult(code=code, message="Hatalı"))
    assert caught.value.code == code
    assert caught.value.paynet_message == "Hatalı"


@pytest.mark.parametrize("code", [2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 21, 99, -1])
def test_other_codes_raise_failure(code: int) -> None:
    with pytest.raises(PaynetFailureCodeError) as caught:
        classify_result(PaynetResult(code=code, message="Hata"))
    assert caught.value.code == code


def test_success_code_verifies() -> None:
    verified = classify_result(PaynetResult(code=0, message="Başarılı İşlem"))
    assert verified.message == "Başarılı İşlem"


def test_rotated_key_retried_once() -> None:
    paynet = FakePaynet([_unauthorized(), PaynetResult(code=0, message="ok")])
    keys = FakeSecretKeys(cached="sck_test_old", stored="sck_test_new")
    verified = OtpVerifier(paynet, keys).verify(PAYLOAD, deadline=1e12)
    assert verified.code == 0
    assert paynet.keys_used == ["sck_test_old", "sck_test_new"]
    assert keys.forced_fetches == 1


def test_unchanged_key_not_retried() -> None:
    paynet = FakePaynet([_unauthorized(), PaynetResult(code=0, message="ok")])
    keys = FakeSecretKeys(cached="sck_test_same", stored="sck_test_same")
    with pytest.raises(PaynetAuthenticationError):
        OtpVerifier(paynet, keys).verify(PAYLOAD, deadline=1e12)
    assert paynet.keys_used == ["sck_test_same"]


def test_second_401_not_retried() -> None:
    paynet = FakePaynet([_unauthorized(), _unauthorized(), PaynetResult(code=0, message="ok")])
    keys = FakeSecretKeys(cached="sck_test_old", stored="sck_test_new")
    with pytest.raises(PaynetAuthenticationError):
        OtpVerifier(paynet, keys).verify(PAYLOAD, deadline=1e12)
    assert len(paynet.keys_used) == 2
    assert keys.forced_fetches == 1


def test_timeout_not_retried() -> None:
    paynet = FakePaynet([PaynetTimeoutError("slow"), PaynetResult(code=0, message="ok")])
    keys = FakeSecretKeys(cached="sck_test_a", stored="sck_test_b")
    with pytest.raises(PaynetTimeoutError):
        OtpVerifier(paynet, keys).verify(PAYLOAD, deadline=1e12)
    assert len(paynet.keys_used) == 1
    assert keys.forced_fetches == 0


def test_latency_recorded_on_failure() -> None:
    verifier = OtpVerifier(
        FakePaynet([PaynetTimeoutError("slow")]), FakeSecretKeys("sck_test_a", "sck_test_a")
    )
    with pytest.raises(PaynetTimeoutError):
        verifier.verify(PAYLOAD, deadline=1e12)
    assert verifier.last_latency_ms is not None
