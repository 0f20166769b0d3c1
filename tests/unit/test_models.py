"""Request model: normalisation and rejection of each field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from otp_check.models import CheckOtpRequest

VALID = {"user_gsm": "5324818942", "otp_session_id": "123456", "otp_code": "ART2"}


def _parse(**overrides: Any) -> CheckOtpRequest:
    return CheckOtpRequest.model_validate({**VALID, **overrides})


def _error_fields(**overrides: Any) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        _parse(**overrides)
    return [str(error["loc"][0]) for error in caught.value.errors()]


@pytest.mark.parametrize(
    "written",
    [
        "5324818942",
        "05324818942",
        "905324818942",
        "+905324818942",
        "+90 532 481 89 42",
        "0532-481-89-42",
        "(532) 481 8942",
        "0 (532) 481 89 42",
        "00905324818942",
        "  5324818942  ",
        5324818942,
    ],
)
def test_user_gsm_forms_normalised(written: object) -> None:
    assert _parse(user_gsm=written).user_gsm == "5324818942"


@pytest.mark.parametrize(
    "written",
    [
        "",
        "1234",
        "4324818942",  # a landline-style prefix, not a mobile number
        "532481894",
        "53248189421",
        "+15324818942",
        "+44 7911 123456",
        "90532481894",
        "5324818942x",
        "532481894２",  # fullwidth digit
        "+90+5324818942",
        "532 481 89 42 " * 3,
        True,
        None,
        5.324818942e9,
        ["5324818942"],
    ],
)
def test_user_gsm_rejected(written: object) -> None:
    assert _error_fields(user_gsm=written) == ["user_gsm"]


@pytest.mark.parametrize(
    ("typed", "expected"),
    [("ART2", "ART2"), (" 1234 ", "1234"), ("a", "a"), ("Z" * 16, "Z" * 16), ("\t42\n", "42")],
)
def test_otp_code_trimmed(typed: str, expected: str) -> None:
    assert _parse(otp_code=typed).otp_code == expected


@pytest.mark.parametrize(
    "typed", ["", "   ", "Z" * 17, "12 34", "12-34", "çöz1", "١٢٣٤", 1234, None, True]
)
def test_otp_code_rejected(typed: object) -> None:
    assert _error_fields(otp_code=typed) == ["otp_code"]


@pytest.mark.parametrize(
    ("sent", "expected"),
    [("123456", "123456"), (123456, "123456"), (0, "0"), ("a" * 64, "a" * 64), ("ş-1", "ş-1")],
)
def test_otp_session_id_accepted(sent: object, expected: str) -> None:
    assert _parse(otp_session_id=sent).otp_session_id == expected


@pytest.mark.parametrize(
    "sent",
    ["", "   ", "a" * 65, 10**64, True, False, None, 1.5, {"id": 1}, ["1"], "a\nb", "\ud800"],
)
def test_otp_session_id_rejected(sent: object) -> None:
    assert _error_fields(otp_session_id=sent) == ["otp_session_id"]


def test_unknown_fields_dropped() -> None:
    request = _parse(amount="100", card_number="4111111111111111")
    assert request.to_paynet_payload() == VALID


def test_missing_fields_reported() -> None:
    with pytest.raises(ValidationError) as caught:
        CheckOtpRequest.model_validate({})
    fields = sorted(str(error["loc"][0]) for error in caught.value.errors())
    assert fields == ["otp_code", "otp_session_id", "user_gsm"]


def test_errors_do_not_echo_input() -> None:
    with pytest.raises(ValidationError) as caught:
        _parse(otp_code="SECRET-CODE-99")
    message = str(caught.value.errors(include_input=False)[0]["msg"])
    assert "SECRET-CODE-99" not in message


def test_repr_hides_phone_number_and_otp() -> None:
    request = CheckOtpRequest.model_validate(
        {"user_gsm": "5324818942", "otp_session_id": "123456", "otp_code": "Q7Z3X1"}
    )
    text = f"{request!r} {request!s}"
    assert "5324818942" not in text
    assert "Q7Z3X1" not in text
    assert "123456" in text  # the session id is no secret and helps to trace a request
