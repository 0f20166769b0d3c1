"""Domain errors of the OTP check.

Adapters raise these in place of urllib3, botocore and parsing errors, and only the HTTP edge
turns them into responses.
"""

from __future__ import annotations


class OtpCheckError(Exception):
    """Base class of every error the OTP check raises on purpose."""


class ConfigurationError(OtpCheckError):
    """The function's own settings or secret are missing or invalid."""


class SecretUnavailableError(ConfigurationError):
    """Secrets Manager did not return the Paynet secret."""

    def __init__(self, message: str, *, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


class PaynetError(OtpCheckError):
    """Paynet failed, or sent a response this service cannot use."""


class PaynetUnavailableError(PaynetError):
    """No connection to Paynet could be made, so no request reached it."""


class PaynetTimeoutError(PaynetError):
    """Paynet did not respond within the time left for the invocation.

    ``request_sent`` is False when the time ran out before the request left, during the connect
    or before it, so Paynet cannot have checked the OTP.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class PaynetConnectionDroppedError(PaynetError):
    """The connection failed after the request was sent, so Paynet may have received it."""


class PaynetTLSError(PaynetError):
    """The TLS handshake with Paynet failed, for example on an untrusted certificate."""


class PaynetInvalidResponseError(PaynetError):
    """Paynet's response is not the JSON object its API documents."""


class PaynetHTTPError(PaynetError):
    """Paynet responded with an HTTP status other than 200."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_type: str | None = None,
        result_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.result_code = result_code


class PaynetAuthenticationError(PaynetHTTPError):
    """Paynet rejected the secret key with HTTP 401."""


class PaynetFailureCodeError(PaynetError):
    """Paynet returned a code that means its side failed (not an OTP rejection)."""

    def __init__(self, code: int, paynet_message: str) -> None:
        super().__init__(f"Paynet returned code {code}")
        self.code = code
        self.paynet_message = paynet_message


class OtpRejectedError(OtpCheckError):
    """Paynet rejected the OTP: it is wrong, expired or unknown for the session."""

    def __init__(self, code: int, paynet_message: str) -> None:
        super().__init__(f"Paynet rejected the OTP with code {code}")
        self.code = code
        self.paynet_message = paynet_message


class AttemptLimitReachedError(OtpCheckError):
    """Too many failed checks for the session or the phone number; Paynet is not called."""

    def __init__(self, scope: str, *, retry_after_seconds: int) -> None:
        super().__init__(f"Failed-check limit reached for the {scope}")
        self.scope = scope
        self.retry_after_seconds = retry_after_seconds


class AttemptStoreError(OtpCheckError):
    """The attempt counters in DynamoDB could not be read or updated."""

    def __init__(self, message: str, *, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code
