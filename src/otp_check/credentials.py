"""Read the Paynet secret key from AWS Secrets Manager."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from otp_check.errors import ConfigurationError, SecretUnavailableError

if TYPE_CHECKING:
    import boto3

# Paynet keys start with "sck_" and may contain "/" and "+". Any visible ASCII character is
# accepted because the key goes into an HTTP header exactly as stored, and whitespace or control
# characters there point to a copy-and-paste mistake.
_SECRET_KEY_PATTERN = re.compile(r"[\x21-\x7e]+")

# The secret is fetched only when the cache is cold or expired. Short timeouts and one retry
# keep a slow Secrets Manager from using up the invocation, at most 2 x (1 + 2) s plus a
# backoff of under 1 s. total_max_attempts counts the first attempt, and max_attempts does not.
_SECRETS_MANAGER_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"total_max_attempts": 2, "mode": "standard"},
)


class SecretKeySource(Protocol):
    """Source of the Paynet secret key."""

    def get_secret_key(self, *, force_fetch: bool = False) -> str: ...

    def close(self) -> None: ...


class SecretsManagerKeySource:
    """Paynet secret key from one Secrets Manager secret, cached for ``max_age`` seconds.

    The secret value is either the bare key or the JSON object ``{"secret_key": "sck_..."}``.
    Failures are never cached, so the next call after a fault fetches again.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        max_age: int,
        session_factory: Callable[[], boto3.session.Session] | None = None,
    ) -> None:
        self._secret_id = secret_id
        self._max_age = max_age
        try:
            # Without a session, Powertools creates one of its own, which loads and parses the
            # endpoint rules and service data again instead of sharing the caller's.
            session = session_factory() if session_factory is not None else None
            self._provider = SecretsProvider(
                boto_config=_SECRETS_MANAGER_CONFIG, boto3_session=session
            )
        except BotoCoreError as exc:
            # For example NoRegionError: the client cannot be built without a region.
            raise SecretUnavailableError(
                f"Cannot create the Secrets Manager client: {type(exc).__name__}",
                error_code=type(exc).__name__,
            ) from exc

    def get_secret_key(self, *, force_fetch: bool = False) -> str:
        """Return the Paynet secret key, from the cache unless ``force_fetch`` is set."""
        try:
            value = self._provider.get(
                self._secret_id, max_age=self._max_age, force_fetch=force_fetch
            )
        except GetParameterError as exc:
            # Powertools 3 raises GetParameterError inside its except block without "from",
            # so the botocore error is the implicit context, not the cause.
            error_code = _error_code(exc.__cause__ or exc.__context__)
            raise SecretUnavailableError(
                f"Cannot read secret {self._secret_id!r} from Secrets Manager: {error_code}",
                error_code=error_code,
            ) from exc
        try:
            return parse_secret_value(value)
        except ConfigurationError:
            # The provider caches the raw value. Dropping it means that a corrected secret is
            # read on the next invocation rather than when the cache expires.
            self._provider.clear_cache()  # type: ignore[no-untyped-call]
            raise

    def close(self) -> None:
        """Drop the cached secret and close the Secrets Manager client's connections."""
        self._provider.clear_cache()  # type: ignore[no-untyped-call]
        self._provider.client.close()


def _error_code(cause: BaseException | None) -> str:
    if isinstance(cause, ClientError):
        return str(cause.response.get("Error", {}).get("Code", "ClientError"))
    if cause is None:
        return "Unknown"
    return type(cause).__name__


def parse_secret_value(value: object) -> str:
    """Extract the Paynet key from a secret value.

    Raises ConfigurationError for a malformed value. The message never quotes the value.
    """
    if not isinstance(value, str):
        raise ConfigurationError(
            "The Paynet secret is binary; store it as SecretString, either the bare key "
            'or {"secret_key": "sck_..."}'
        )

    key: object = value
    # A bare key never starts with a bracket, so such a value is meant as JSON.
    if value.lstrip().startswith(("{", "[")):
        try:
            document = json.loads(value)
        except (ValueError, RecursionError):
            raise ConfigurationError("The Paynet secret is not valid JSON") from None
        if not isinstance(document, dict) or "secret_key" not in document:
            raise ConfigurationError('The Paynet secret JSON has no "secret_key" member')
        key = document["secret_key"]

    if not isinstance(key, str) or not key:
        raise ConfigurationError("The Paynet secret key is empty or not a string")
    if not _SECRET_KEY_PATTERN.fullmatch(key):
        raise ConfigurationError(
            "The Paynet secret key contains whitespace or characters outside visible ASCII"
        )
    return key
