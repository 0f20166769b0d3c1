"""Failed-check counters in DynamoDB, which cap how often an OTP can be guessed.

Each counter is one item: ``pk`` (``session#<hmac>`` or ``phone#<hmac>``), ``checks`` (checks
counted so far), ``expires_at`` (epoch seconds, also the table's TTL attribute) and, for
sessions, ``verified``. A check is counted before Paynet is called, with a conditional update,
so that parallel requests cannot pass the limit together. The count is given back when Paynet
did not check the OTP.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from otp_check.errors import AttemptLimitReachedError, AttemptStoreError

# Label of the HMAC key derivation, so that the counter key differs from the Paynet key itself.
_KEY_DERIVATION_LABEL = b"paynet-otp-check attempt counter key v1"

# A reset of an expired counter can race with another request's reset. One of them wins, and
# the loser counts again on the fresh item.
_MAX_RESERVE_ROUNDS = 3


def derive_counter_key(secret_key: str) -> bytes:
    """Derive the HMAC key for counter ids from the Paynet secret key.

    A rotated Paynet key therefore starts every counter afresh.
    """
    return hmac.new(secret_key.encode(), _KEY_DERIVATION_LABEL, hashlib.sha256).digest()


def counter_id(kind: str, value: str, key: bytes) -> str:
    """Build a counter's partition key. The value is stored only as its HMAC, never in clear."""
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    return f"{kind}#{digest}"


class AttemptStore(Protocol):
    """Atomic counters with an expiry."""

    def reserve(self, counter: str, *, limit: int, ttl_seconds: int, scope: str) -> None: ...

    def release(self, counter: str) -> None: ...

    def mark_verified(self, counter: str, *, ttl_seconds: int) -> None: ...

    def close(self) -> None: ...


class DynamoDBAttemptStore:
    """AttemptStore on one DynamoDB table, with UpdateItem and PutItem only.

    ``client`` counts checks. ``settle_client``, by default the same, gives counts back and
    marks sessions verified after the Paynet call, so it can have shorter timeouts and no
    retries.

    NOTE: a counting UpdateItem that DynamoDB applied but whose response was lost is sent again
    by botocore's retry and counts twice. That only makes the limit stricter, so it is left.
    """

    def __init__(
        self,
        table_name: str,
        client: Any,
        *,
        settle_client: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table_name = table_name
        self._client = client
        self._settle_client = settle_client if settle_client is not None else client
        self._clock = clock

    def reserve(self, counter: str, *, limit: int, ttl_seconds: int, scope: str) -> None:
        """Count one check, or raise AttemptLimitReachedError when ``limit`` is reached.

        A verified counter accepts every further check. An expired item that DynamoDB's TTL
        has not deleted yet counts as absent, because TTL deletion can lag by days.
        """
        for _ in range(_MAX_RESERVE_ROUNDS):
            now = int(self._clock())
            old_item = self._increment(counter, limit=limit, expires_at=now + ttl_seconds, now=now)
            if old_item is None:
                return
            if not old_item:
                raise AttemptStoreError(
                    "DynamoDB did not return the item that failed the condition",
                    error_code="MissingItem",
                )

            expires_at = int(old_item.get("expires_at", {}).get("N", "0"))
            if expires_at > now:
                raise AttemptLimitReachedError(scope, retry_after_seconds=max(expires_at - now, 1))
            if self._restart(counter, expires_at=now + ttl_seconds, now=now):
                return
        raise AttemptStoreError(
            "Counter kept changing while it was reset", error_code="ResetContention"
        )

    def release(self, counter: str) -> None:
        """Give back one counted check, for a check that Paynet did not make."""
        self._call(
            "UpdateItem",
            settling=True,
            Key={"pk": {"S": counter}},
            UpdateExpression="SET checks = checks - :one",
            ConditionExpression="checks > :zero",
            ExpressionAttributeValues={":one": {"N": "1"}, ":zero": {"N": "0"}},
            ignore_condition_failure=True,
        )

    def mark_verified(self, counter: str, *, ttl_seconds: int) -> None:
        """Record that Paynet verified the OTP, which lifts the counter's limit."""
        expires_at = int(self._clock()) + ttl_seconds
        self._call(
            "UpdateItem",
            settling=True,
            Key={"pk": {"S": counter}},
            UpdateExpression="SET verified = :true, expires_at = if_not_exists(expires_at, :exp)",
            ExpressionAttributeValues={":true": {"BOOL": True}, ":exp": {"N": str(expires_at)}},
        )

    def close(self) -> None:
        self._client.close()
        if self._settle_client is not self._client:
            self._settle_client.close()

    def _increment(
        self, counter: str, *, limit: int, expires_at: int, now: int
    ) -> dict[str, Any] | None:
        """Count one check. Return None on success, or the item that blocked it."""
        return self._call(
            "UpdateItem",
            Key={"pk": {"S": counter}},
            UpdateExpression=(
                "SET checks = if_not_exists(checks, :zero) + :one, "
                "expires_at = if_not_exists(expires_at, :expires_at)"
            ),
            ConditionExpression=(
                "attribute_not_exists(pk) "
                "OR (expires_at > :now AND (checks < :limit OR verified = :true))"
            ),
            ExpressionAttributeValues={
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
                ":expires_at": {"N": str(expires_at)},
                ":now": {"N": str(now)},
                ":limit": {"N": str(limit)},
                ":true": {"BOOL": True},
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            return_blocking_item=True,
        )

    def _restart(self, counter: str, *, expires_at: int, now: int) -> bool:
        """Replace an expired item with a fresh count of 1. False if another request won."""
        blocking = self._call(
            "PutItem",
            Item={
                "pk": {"S": counter},
                "checks": {"N": "1"},
                "expires_at": {"N": str(expires_at)},
            },
            ConditionExpression="attribute_not_exists(pk) OR expires_at <= :now",
            ExpressionAttributeValues={":now": {"N": str(now)}},
            return_blocking_item=True,
        )
        return blocking is None

    def _call(
        self,
        operation: str,
        *,
        settling: bool = False,
        ignore_condition_failure: bool = False,
        return_blocking_item: bool = False,
        **parameters: Any,
    ) -> dict[str, Any] | None:
        client = self._settle_client if settling else self._client
        method = client.update_item if operation == "UpdateItem" else client.put_item
        try:
            method(TableName=self._table_name, **parameters)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "ClientError"))
            if code == "ConditionalCheckFailedException":
                if return_blocking_item:
                    # ReturnValuesOnConditionCheckFailure puts the blocking item here.
                    return cast("dict[str, Any]", exc.response.get("Item", {}))
                if ignore_condition_failure:
                    return None
            raise AttemptStoreError(
                f"DynamoDB {operation} on the attempts table failed: {code}", error_code=code
            ) from exc
        except BotoCoreError as exc:
            raise AttemptStoreError(
                f"DynamoDB {operation} on the attempts table failed: {type(exc).__name__}",
                error_code=type(exc).__name__,
            ) from exc
        return None
