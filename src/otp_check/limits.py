"""Attempt limits of the OTP check: how many failed checks a session and a phone number get."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from otp_check.attempts import AttemptStore, counter_id, derive_counter_key
from otp_check.errors import AttemptLimitReachedError, AttemptStoreError
from otp_check.observability import logger

# Maximum time that settling a check after the Paynet call takes: two writes of at most
# 0.25 s to connect and 0.5 s to read each, with no retry. The Paynet call ends this much
# earlier, so that settling fits into the invocation.
SETTLE_SECONDS = 1.5


@dataclass(frozen=True)
class AttemptPolicy:
    """Limits on failed checks, and what to do when the counters cannot be reached."""

    max_checks_per_session: int = 5
    max_checks_per_phone: int = 10
    phone_window_seconds: int = 3600
    session_ttl_seconds: int = 3600
    # Fail closed: when DynamoDB fails, no check reaches Paynet. Fail open trades that
    # protection for availability.
    fail_open: bool = False


def _settle_quietly(operation: Callable[[], None]) -> None:
    try:
        operation()
    except AttemptStoreError as exc:
        # The Paynet outcome is already final. A count that is not given back only makes the
        # limit stricter, so the error is logged and the response is sent as it is.
        logger.warning(
            "Attempt counter update failed",
            extra={"error_kind": type(exc).__name__, "error_code": exc.error_code},
        )


class Reservation:
    """The checks counted for one request, settled once Paynet's outcome is known.

    A rejected OTP needs no settling: its counts stay, as failed checks.
    """

    def __init__(
        self, store: AttemptStore | None, session: str, phone: str, policy: AttemptPolicy
    ) -> None:
        self._store = store
        self._session = session
        self._phone = phone
        self._policy = policy

    def record_verified(self) -> None:
        """End the session's counting and give the phone's count back: it was no failure."""
        store = self._store
        if store is None:
            return
        ttl_seconds = self._policy.session_ttl_seconds
        _settle_quietly(lambda: store.mark_verified(self._session, ttl_seconds=ttl_seconds))
        _settle_quietly(lambda: store.release(self._phone))

    def cancel(self) -> None:
        """Give both counts back, for a check that Paynet did not make."""
        store = self._store
        if store is None:
            return
        _settle_quietly(lambda: store.release(self._session))
        _settle_quietly(lambda: store.release(self._phone))


class AttemptLimiter:
    """Counts checks per session and per phone number before they reach Paynet."""

    def __init__(self, store: AttemptStore, policy: AttemptPolicy) -> None:
        self._store = store
        self._policy = policy

    def reserve(self, *, session_id: str, user_gsm: str, secret_key: str) -> Reservation:
        """Count this check for its session and its phone number.

        Raises AttemptLimitReachedError when either limit is reached, and AttemptStoreError
        when DynamoDB fails and the policy fails closed.
        """
        key = derive_counter_key(secret_key)
        # The session counter belongs to the phone number too: Paynet issues each session for
        # one number, and checks sent with other numbers must not use up or lift its limit.
        session = counter_id("session", f"{user_gsm}\0{session_id}", key)
        phone = counter_id("phone", user_gsm, key)
        try:
            self._reserve_both(session, phone)
        except AttemptStoreError as exc:
            if not self._policy.fail_open:
                raise
            logger.warning(
                "Attempt store failed, checking without a limit",
                extra={"error_kind": type(exc).__name__, "error_code": exc.error_code},
            )
            return Reservation(None, session, phone, self._policy)
        return Reservation(self._store, session, phone, self._policy)

    def _reserve_both(self, session: str, phone: str) -> None:
        policy = self._policy
        self._store.reserve(
            session,
            limit=policy.max_checks_per_session,
            ttl_seconds=policy.session_ttl_seconds,
            scope="session",
        )
        try:
            self._store.reserve(
                phone,
                limit=policy.max_checks_per_phone,
                ttl_seconds=policy.phone_window_seconds,
                scope="phone number",
            )
        except (AttemptLimitReachedError, AttemptStoreError):
            # This check will not happen, so the session must not pay for it.
            _settle_quietly(lambda: self._store.release(session))
            raise

    def close(self) -> None:
        self._store.close()
