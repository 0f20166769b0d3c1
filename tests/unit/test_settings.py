"""Settings: defaults, validation and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from otp_check.errors import ConfigurationError
from otp_check.settings import PAYNET_TEST_BASE_URL, load_settings


def test_defaults_point_at_test_system() -> None:
    settings = load_settings({"PAYNET_SECRET_ID": "paynet/otp-check/test"})
    assert settings.paynet_base_url == PAYNET_TEST_BASE_URL
    assert settings.paynet_secret_max_age_seconds == 300
    assert settings.paynet_ca_bundle is None


def test_missing_secret_id_named() -> None:
    with pytest.raises(ConfigurationError, match="PAYNET_SECRET_ID"):
        load_settings({})


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
