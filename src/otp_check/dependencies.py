"""Build the OTP verifier once per process, so warm invocations reuse its connection and cache."""

from __future__ import annotations

from functools import cache

from otp_check.credentials import SecretsManagerKeySource
from otp_check.paynet import Urllib3PaynetClient
from otp_check.settings import Settings, get_settings
from otp_check.verification import OtpVerifier


def build_verifier(settings: Settings) -> OtpVerifier:
    paynet = Urllib3PaynetClient(
        settings.paynet_base_url,
        connect_timeout=settings.paynet_connect_timeout_seconds,
        read_timeout=settings.paynet_timeout_seconds,
        ca_certs=str(settings.paynet_ca_bundle) if settings.paynet_ca_bundle else None,
    )
    secret_keys = SecretsManagerKeySource(
        settings.paynet_secret_id, max_age=settings.paynet_secret_max_age_seconds
    )
    return OtpVerifier(paynet, secret_keys)


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
