"""Parsing the Paynet secret value."""

from __future__ import annotations

import json

import pytest

from otp_check.credentials import parse_secret_value
from otp_check.errors import ConfigurationError

KEY = "sck_test_Zq3/u+Vx9LmN2pQ8rT5wY1kA"


def test_bare_key_accepted() -> None:
    assert parse_secret_value(KEY) == KEY


def test_json_key_accepted() -> None:
    assert parse_secret_value(json.dumps({"secret_key": KEY, "note": "x"})) == KEY


@pytest.mark.parametrize(
    "value",
    [
        "",
        "{not json",
        json.dumps({"key": KEY}),
        json.dumps({"secret_key": ""}),
        json.dumps({"secret_key": 12}),
        json.dumps([KEY]),
        f"{KEY}\n",
        f"sck_test_ {KEY}",
        b"sck_test_binary",
        None,
    ],
)
def test_malformed_value_rejected(value: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_secret_value(value)


@pytest.mark.parametrize(
    "value", ['{"secret_key": "sck_test_leak 1"}', "{sck_test_leak", "sck_test_leak\t"]
)
def test_error_omits_value(value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_secret_value(value)
    assert "sck_test_leak" not in str(caught.value)
