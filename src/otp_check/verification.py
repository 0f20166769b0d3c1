"""The OTP-check domain: one call to Paynet and what its return code means."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from otp_check.credentials import SecretKeySource
from otp_check.errors import (
    ConfigurationError,
    OtpRejectedError,
    PaynetAuthenticationError,
    PaynetConnectionDroppedError,
    PaynetError,
    PaynetFailureCodeError,
    PaynetTimeoutError,
)
from otp_check.limits import SETTLE_SECONDS, AttemptLimiter
from otp_check.observability import logger
from otp_check.paynet import PaynetClient, PaynetResult

PAYNET_SUCCESS_CODE = 0

# Paynet documents no OTP-specific return codes. A wrong or expired OTP comes back as
# 1 (unsuccessful), and 11 (badrequest) and 12 (nodata) are the other codes that describe the
# user's input rather than a failure on Paynet's side. Every other code is a Paynet failure.
PAYNET_REJECTION_CODES = frozenset({1, 11, 12})


@dataclass(frozen=True)
class VerifiedOtp:
    """A check that Paynet accepted."""

    code: int
    message: str


class OtpVerifier:
    """Checks OTPs with Paynet, using the secret key from ``secret_keys``.

    With a ``limiter``, every check is counted for its session and phone number before it
    reaches Paynet, and a check over either limit never reaches it.
    """

    def __init__(
        self,
        paynet: PaynetClient,
        secret_keys: SecretKeySource,
        limiter: AttemptLimiter | None = None,
    ) -> None:
        self._paynet = paynet
        self._secret_keys = secret_keys
        self._limiter = limiter
        self.last_latency_ms: float | None = None

    def verify(self, payload: Mapping[str, str], *, deadline: float) -> VerifiedOtp:
        """Check one OTP with Paynet.

        Raises OtpRejectedError when Paynet rejects the OTP, AttemptLimitReachedError when a
        limit is reached, and a PaynetError, AttemptStoreError or ConfigurationError when the
        check could not be made.
        """
        self.last_latency_ms = None
        secret_key = self._secret_keys.get_secret_key()
        if self._limiter is None:
            return self._verify_with_paynet(payload, secret_key, deadline)

        reservation = self._limiter.reserve(
            session_id=payload["otp_session_id"],
            user_gsm=payload["user_gsm"],
            secret_key=secret_key,
        )
        try:
            verified = self._verify_with_paynet(payload, secret_key, deadline - SETTLE_SECONDS)
        except OtpRejectedError:
            raise  # The counts stay: this was a failed check.
        except PaynetTimeoutError as exc:
            # Once the request has left, Paynet may have checked the OTP, so the counts stay.
            if not exc.request_sent:
                reservation.cancel()
            raise
        except PaynetConnectionDroppedError:
            raise  # Paynet may have checked the OTP, so the counts stay.
        except (PaynetError, ConfigurationError):
            reservation.cancel()
            raise
        reservation.record_verified()
        return verified

    def _verify_with_paynet(
        self, payload: Mapping[str, str], secret_key: str, deadline: float
    ) -> VerifiedOtp:
        try:
            result = self._call_paynet(payload, secret_key, deadline)
        except PaynetAuthenticationError:
            # A 401 means Paynet did not check the OTP, so asking once more is safe. The key
            # may have been rotated since it was cached, so fetch it again. An unchanged key
            # would get the same 401, so the error is raised as it is.
            fresh_key = self._secret_keys.get_secret_key(force_fetch=True)
            if fresh_key == secret_key:
                raise
            logger.info("Paynet rejected the cached secret key, retrying with the fetched one")
            result = self._call_paynet(payload, fresh_key, deadline)
        return classify_result(result)

    def prefetch_secret_key(self) -> None:
        """Read the secret key into the cache, so that the next check does not wait for it."""
        self._secret_keys.get_secret_key()

    def close(self) -> None:
        """Close the Paynet and AWS connections and drop the cached secret key."""
        self._paynet.close()
        self._secret_keys.close()
        if self._limiter is not None:
            self._limiter.close()

    def _call_paynet(
        self, payload: Mapping[str, str], secret_key: str, deadline: float
    ) -> PaynetResult:
        started = time.monotonic()
        try:
            return self._paynet.check_otp(payload, secret_key=secret_key, deadline=deadline)
        finally:
            self.last_latency_ms = round((time.monotonic() - started) * 1000, 1)


def classify_result(result: PaynetResult) -> VerifiedOtp:
    """Turn Paynet's return code into a verified OTP, or raise for a rejection or failure."""
    if result.code == PAYNET_SUCCESS_CODE:
        return VerifiedOtp(code=result.code, message=result.message)
    if result.code in PAYNET_REJECTION_CODES:
        raise OtpRejectedError(result.code, result.message)
    raise PaynetFailureCodeError(result.code, result.message)
