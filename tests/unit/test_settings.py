"""Settings: defaults, validation and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_check.errors import ConfigurationError
from otp_check.settings import PAYNET_TEST_BASE_URL, Settings
from otp_check.settings import load_settings as _load_settings

REQUIRED = {"ATTEMPTS_TABLE_NAME": "attempts"}


def load_settings(environ: dict[str, str]) -> Settings:
    return _load_settings({**REQUIRED, **environ})


def test_defaults_point_at_test_system() -> None:
    settings = load_settings({"PAYNET_SECRET_ID": "paynet/otp-check/test"})
    assert settings.paynet_base_url == PAYNET_TEST_BASE_URL
    assert settings.paynet_secret_max_age_seconds == 300
    assert settings.paynet_ca_bundle is None


def test_missing_secret_id_named() -> None:
    with pytest.raises(ConfigurationError, match="PAYNET_SECRET_ID"):
        load_settings({})


def test_missing_table_named() -> None:
    with pytest.raises(ConfigurationError, match="ATTEMPTS_TABLE_NAME"):
        _load_settings({"PAYNET_SECRET_ID": "s"})


def test_limit_defaults() -> None:
    settings = load_settings({"PAYNET_SECRET_ID": "s"})
    assert settings.max_failed_checks_per_session == 5
    assert settings.max_failed_checks_per_phone == 10
    assert settings.phone_limit_window_seconds == 3600
    assert settings.attempt_store_failure_mode == "closed"
    assert settings.cors_allowed_origins == frozenset()


@pytest.mark.parametrize(
    "origins",
    [
        "*",
        "https://app.example.com/path",
        "app.example.com",
        "https://*.example.com",
        # Browsers never send these forms, so they could never match.
        "https://App.Example.com",
        "https://app.example.com:443",
        "http://localhost:80",
        "https://bücher.example",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "ftp://app.example.com",
    ],
)
def test_invalid_cors_origin_rejected(origins: str) -> None:
    with pytest.raises(ConfigurationError, match="CORS_ALLOWED_ORIGINS"):
        load_settings({"PAYNET_SECRET_ID": "s", "CORS_ALLOWED_ORIGINS": origins})


def test_cors_origins_split() -> None:
    value = " https://app.example.com, http://localhost:3000 ,https://xn--bcher-kva.example:8443"
    settings = load_settings({"PAYNET_SECRET_ID": "s", "CORS_ALLOWED_ORIGINS": value})
    assert settings.cors_allowed_origins == {
        "https://app.example.com",
        "http://localhost:3000",
        "https://xn--bcher-kva.example:8443",
    }


def test_invalid_failure_mode_rejected() -> None:
    with pytest.raises(ConfigurationError, match="ATTEMPT_STORE_FAILURE_MODE"):
        load_settings({"PAYNET_SECRET_ID": "s", "ATTEMPT_STORE_FAILURE_MODE": "maybe"})


@pytest.mark.parametrize(
    "url",
    [
        "http://pts-api.paynet.com.tr",
        "ftp://pts-api.paynet.com.tr",
        "pts-api.paynet.com.tr",
        "https://user:pass@pts-api.paynet.com.tr",
        "https://pts-api.paynet.com.tr/?a=1",
        "http://10.0.0.1:8080",
    ],
)
def test_base_url_rejected(url: str) -> None:
    with pytest.raises(ConfigurationError, match="PAYNET_BASE_URL"):
        load_settings({"PAYNET_SECRET_ID": "s", "PAYNET_BASE_URL": url})


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.paynet.com.tr/", "https://api.paynet.com.tr"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://localhost:8081", "http://localhost:8081"),
        ("http://[::1]:8081", "http://[::1]:8081"),
    ],
)
def test_base_url_accepted(url: str, expected: str) -> None:
    settings = load_settings({"PAYNET_SECRET_ID": "s", "PAYNET_BASE_URL": url})
    assert settings.paynet_base_url == expected


def test_invalid_timeout_named() -> None:
    with pytest.raises(ConfigurationError, match="PAYNET_TIMEOUT_SECONDS"):
        load_settings({"PAYNET_SECRET_ID": "s", "PAYNET_TIMEOUT_SECONDS": "soon"})


def test_empty_ca_bundle_unset() -> None:
    settings = load_settings({"PAYNET_SECRET_ID": "s", "PAYNET_CA_BUNDLE": ""})
    assert settings.paynet_ca_bundle is None


def test_missing_ca_bundle_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="PAYNET_CA_BUNDLE"):
        load_settings({"PAYNET_SECRET_ID": "s", "PAYNET_CA_BUNDLE": str(tmp_path / "no.pem")})


def test_error_omits_values() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({"PAYNET_SECRET_ID": "s", "PAYNET_TIMEOUT_SECONDS": "sck_test_leak"})
    assert "sck_test_leak" not in str(caught.value)
