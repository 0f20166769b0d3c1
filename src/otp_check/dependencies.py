"""Build the OTP verifier once per process, so warm invocations reuse its connection and cache."""

from __future__ import annotations

from functools import cache
from typing import cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from otp_check.attempts import DynamoDBAttemptStore
from otp_check.credentials import SecretsManagerKeySource
from otp_check.errors import AttemptStoreError, OtpCheckError
from otp_check.limits import AttemptLimiter, AttemptPolicy
from otp_check.observability import logger
from otp_check.paynet import Urllib3PaynetClient
from otp_check.settings import Settings, get_settings
from otp_check.verification import OtpVerifier

# Every check waits for DynamoDB before Paynet, so counting gets short timeouts and one retry:
# at most 2 x (0.5 + 1) s per call, plus backoff, for calls that take milliseconds when healthy.
# NOTE: these timeouts do not shrink with the invocation's remaining time. When Secrets Manager
# and DynamoDB both hang, their 6 s and 2 x 3 s can use up most of the 15 s Lambda timeout, and
# the Paynet call then gets 504 for want of time.
_DYNAMODB_COUNT_CONFIG = Config(
    connect_timeout=0.5,
    read_timeout=1,
    retries={"total_max_attempts": 2, "mode": "standard"},
)

# Settling after the Paynet call gets one attempt, because a repeated release could apply twice,
# and timeouts that fit its two writes into limits.SETTLE_SECONDS: 2 x (0.25 + 0.5) s.
_DYNAMODB_SETTLE_CONFIG = Config(
    connect_timeout=0.25,
    read_timeout=0.5,
    retries={"total_max_attempts": 1, "mode": "standard"},
)


def _default_session() -> boto3.session.Session:
    """Return boto3's default session, creating it on first use as ``boto3.client`` does.

    Every client of the function comes from this one session, so botocore loads and parses the
    endpoint rules and the shared data files once instead of once per session.
    """
    session = boto3.DEFAULT_SESSION
    if session is None:
        boto3.setup_default_session()
        session = cast("boto3.session.Session", boto3.DEFAULT_SESSION)
    return session


def build_verifier(settings: Settings) -> OtpVerifier:
    paynet = Urllib3PaynetClient(
        settings.paynet_base_url,
        connect_timeout=settings.paynet_connect_timeout_seconds,
        read_timeout=settings.paynet_timeout_seconds,
        ca_certs=str(settings.paynet_ca_bundle) if settings.paynet_ca_bundle else None,
    )
    secret_keys = SecretsManagerKeySource(
        settings.paynet_secret_id,
        max_age=settings.paynet_secret_max_age_seconds,
        session_factory=_default_session,
    )
    return OtpVerifier(paynet, secret_keys, build_limiter(settings))


def build_limiter(settings: Settings) -> AttemptLimiter:
    try:
        session = _default_session()
        count_client = session.client("dynamodb", config=_DYNAMODB_COUNT_CONFIG)
        settle_client = session.client("dynamodb", config=_DYNAMODB_SETTLE_CONFIG)
    except BotoCoreError as exc:
        raise AttemptStoreError(
            f"Cannot create the DynamoDB client: {type(exc).__name__}",
            error_code=type(exc).__name__,
        ) from exc
    policy = AttemptPolicy(
        max_checks_per_session=settings.max_failed_checks_per_session,
        max_checks_per_phone=settings.max_failed_checks_per_phone,
        phone_window_seconds=settings.phone_limit_window_seconds,
        session_ttl_seconds=settings.session_counter_ttl_seconds,
        fail_open=settings.attempt_store_failure_mode == "open",
    )
    store = DynamoDBAttemptStore(
        settings.attempts_table_name, count_client, settle_client=settle_client
    )
    return AttemptLimiter(store, policy)


@cache
def get_verifier() -> OtpVerifier:
    """Return this process's verifier. A ConfigurationError is raised again on every call."""
    return build_verifier(get_settings())


def reset_dependencies() -> None:
    """Close the connections and drop the cached settings and secret.

    The next invocation then starts as on a new Lambda instance.
    """
    if get_verifier.cache_info().currsize:
        get_verifier().close()
    get_verifier.cache_clear()
    get_settings.cache_clear()


def prepare_for_snapshot() -> None:
    """Close every connection and drop the cached secret, keeping the built clients.

    Lambda SnapStart runs this before it takes the snapshot, which every restored instance then
    shares. An open socket would be dead after a restore, and a cached key would outlive a
    rotation in every instance restored from it. The clients are rebuilt without connections,
    so that restored instances skip loading the botocore models.
    """
    reset_dependencies()
    try:
        get_verifier()
    except OtpCheckError as exc:
        # The first invocation raises the same error again and responds with it.
        logger.warning(
            "Cannot build the verifier before the snapshot",
            extra={"error_kind": type(exc).__name__},
        )


def restore_after_snapshot() -> None:
    """Fetch the secret key again after a SnapStart restore, before the first invocation."""
    try:
        get_verifier().prefetch_secret_key()
    except OtpCheckError as exc:
        # Failures are not cached, so the first invocation fetches the key again.
        logger.warning(
            "Cannot fetch the secret key after the restore",
            extra={"error_kind": type(exc).__name__},
        )


def register_snapstart_hooks() -> bool:
    """Register the SnapStart hooks when the Lambda runtime provides ``snapshot_restore_py``.

    Returns False outside Lambda's Python runtimes, where the module does not exist.
    """
    try:
        import snapshot_restore_py  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return False
    snapshot_restore_py.register_before_snapshot(prepare_for_snapshot)
    snapshot_restore_py.register_after_restore(restore_after_snapshot)
    return True


register_snapstart_hooks()
