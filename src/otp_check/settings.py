"""Settings read once from the environment and validated."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from otp_check.errors import ConfigurationError

PAYNET_TEST_BASE_URL = "https://pts-api.paynet.com.tr"


class Settings(BaseModel):
    """The function's configuration, one field per environment variable."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    paynet_base_url: str = Field(default=PAYNET_TEST_BASE_URL, alias="PAYNET_BASE_URL")
    paynet_secret_id: str = Field(alias="PAYNET_SECRET_ID", min_length=1, max_length=2048)
    paynet_timeout_seconds: float = Field(default=10.0, alias="PAYNET_TIMEOUT_SECONDS", gt=0, le=60)
    paynet_connect_timeout_seconds: float = Field(
        default=3.0, alias="PAYNET_CONNECT_TIMEOUT_SECONDS", gt=0, le=30
    )
    paynet_secret_max_age_seconds: int = Field(
        default=300, alias="PAYNET_SECRET_MAX_AGE_SECONDS", ge=0, le=86_400
    )
    paynet_ca_bundle: Path | None = Field(default=None, alias="PAYNET_CA_BUNDLE")

    attempts_table_name: str = Field(alias="ATTEMPTS_TABLE_NAME", min_length=3, max_length=255)
    max_failed_checks_per_session: int = Field(
        default=5, alias="MAX_FAILED_CHECKS_PER_SESSION", ge=1, le=100
    )
    max_failed_checks_per_phone: int = Field(
        default=10, alias="MAX_FAILED_CHECKS_PER_PHONE", ge=1, le=1000
    )
    phone_limit_window_seconds: int = Field(
        default=3600, alias="PHONE_LIMIT_WINDOW_SECONDS", ge=1, le=86_400
    )
    session_counter_ttl_seconds: int = Field(
        default=3600, alias="SESSION_COUNTER_TTL_SECONDS", ge=1, le=86_400
    )
    attempt_store_failure_mode: Literal["closed", "open"] = Field(
        default="closed", alias="ATTEMPT_STORE_FAILURE_MODE"
    )
    cors_allowed_origins: frozenset[str] = Field(default=frozenset(), alias="CORS_ALLOWED_ORIGINS")

    @field_validator("paynet_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if not parts.hostname:
            raise ValueError("must be an absolute URL such as https://pts-api.paynet.com.tr")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must not contain a query, a fragment or credentials")
        # Plain HTTP would send the secret key in clear, so it is allowed only for the local
        # Paynet sandbox: on loopback, or on the host as seen from `sam local invoke`'s container.
        if parts.scheme == "http" and not _is_local_host(parts.hostname):
            raise ValueError("must use https unless the host is a loopback address")
        if parts.scheme not in ("http", "https"):
            raise ValueError("must use https")
        # urlsplit lower-cases the scheme, so HTTPS://host and https://host read the same.
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")).rstrip("/")

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return parse_allowed_origins(value) if isinstance(value, str) else value

    @field_validator("paynet_ca_bundle", mode="before")
    @classmethod
    def _empty_ca_bundle_is_unset(cls, value: object) -> object:
        # SAM cannot leave an environment variable out, so an empty string means "not set".
        return None if value == "" else value

    @field_validator("paynet_ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError("must be the path of an existing PEM file")
        return value


_DEFAULT_PORTS = {"http": 80, "https": 443}
_ORIGIN_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")


def parse_allowed_origins(value: str) -> frozenset[str]:
    """Parse a comma-separated list of web origins, such as ``https://app.example.com``.

    Browsers send an origin with a lower-case ASCII host and without the scheme's default port,
    and origins are compared as exact strings. An origin written any other way could never
    match, so it is rejected here rather than failing silently. Raises ValueError.
    """
    origins = frozenset(part.strip() for part in value.split(",") if part.strip())
    for origin in origins:
        parts = urlsplit(origin)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if (
            parts.scheme not in _DEFAULT_PORTS
            or f"{parts.scheme}://{parts.netloc}" != origin
            or not _ORIGIN_HOST.fullmatch(parts.hostname or "")
            or parts.netloc.split(":")[0] != parts.hostname
            or port == _DEFAULT_PORTS[parts.scheme]
            or port == -1
        ):
            raise ValueError(
                f"must be a comma-separated list of origins such as https://app.example.com,"
                f" with a lower-case host written in ASCII (punycode), no path, no wildcard and"
                f" no default port; {origin!r} is not one"
            )
    return origins


def _is_local_host(hostname: str) -> bool:
    if hostname in ("localhost", "host.docker.internal"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate the settings in ``environ``.

    Raises ConfigurationError naming each invalid variable. The message never contains a
    variable's value.
    """
    try:
        return Settings.model_validate(dict(environ))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise ConfigurationError(f"Invalid settings: {problems}") from None


@cache
def get_settings() -> Settings:
    """Return the settings of this process, read from the environment on first use."""
    return load_settings(os.environ)
