"""Request and response models of the HTTP API, which Powertools validates requests against."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

_PHONE_SEPARATORS = re.compile(r"[ \-().]")
_PHONE_CHARACTERS = re.compile(r"\+?[0-9 \-().]+")
_TURKISH_MOBILE = re.compile(r"5[0-9]{9}")
_OTP_CODE = re.compile(r"[A-Za-z0-9]{1,16}")

MAX_PHONE_INPUT_LENGTH = 32
MAX_SESSION_ID_LENGTH = 64

# JSON Schemas of the request members for the OpenAPI document. The validators above decide what
# is accepted, and these schemas describe the same values. The one difference is whitespace
# around a phone number or OTP, which the validators trim and the patterns leave out. The
# schemathesis test sends values generated from these schemas and checks that they are accepted.
_SEPARATORS = "[ ().-]*"
_MOBILE_DIGITS = "5" + _SEPARATORS + f"(?:[0-9]{_SEPARATORS}){{9}}"
_USER_GSM_PATTERN = (
    f"^(?:\\+{_SEPARATORS}9{_SEPARATORS}0"
    f"|{_SEPARATORS}(?:0{_SEPARATORS}0{_SEPARATORS}9{_SEPARATORS}0|9{_SEPARATORS}0|0)?)"
    f"{_SEPARATORS}{_MOBILE_DIGITS}$"
)
USER_GSM_SCHEMA = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_PHONE_INPUT_LENGTH, "pattern": _USER_GSM_PATTERN},
        {"type": "integer", "minimum": 5_000_000_000, "maximum": 5_999_999_999},
        {"type": "integer", "minimum": 905_000_000_000, "maximum": 905_999_999_999},
    ]
}
OTP_SESSION_ID_SCHEMA = {
    "anyOf": [
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_SESSION_ID_LENGTH,
            # Python's str.isprintable() decides, and JSON Schema has no portable way to name
            # the same set of characters, so a format of this API's own names it.
            "format": "printable",
        },
        # NOTE: the validator also limits an integer to 64 characters as a decimal string. The
        # bounds are left out because Powertools stores minimum and maximum as floats, which
        # cannot hold 10**64 - 1 exactly.
        {"type": "integer"},
    ]
}
OTP_CODE_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9]{1,16}$"}


def normalize_user_gsm(value: object) -> str:
    """Turn a Turkish mobile number in any common written form into Paynet's 10 digits.

    ``5324818942``, ``05324818942``, ``905324818942``, ``+90 532 481 89 42``,
    ``0532-481-89-42`` and ``(532) 481 8942`` all become ``5324818942``.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("string_type", "must be a string")
    text = str(value).strip()
    if len(text) > MAX_PHONE_INPUT_LENGTH or not _PHONE_CHARACTERS.fullmatch(text):
        raise _invalid_phone_number()

    digits = _PHONE_SEPARATORS.sub("", text)
    if digits.startswith("+"):
        if not digits.startswith("+90"):
            raise _invalid_phone_number()
        digits = digits[3:]
    elif digits.startswith("0090"):
        digits = digits[4:]
    elif len(digits) == 12 and digits.startswith("90"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]

    if not _TURKISH_MOBILE.fullmatch(digits):
        raise _invalid_phone_number()
    return digits


def _invalid_phone_number() -> PydanticCustomError:
    return PydanticCustomError(
        "phone_number", "must be a Turkish mobile number, for example 5324818942"
    )


def normalize_otp_code(value: object) -> str:
    """Trim the code the user typed and check it is 1 to 16 ASCII letters and digits."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "must be a string")
    code = value.strip()
    if not _OTP_CODE.fullmatch(code):
        raise PydanticCustomError("otp_code", "must be 1 to 16 letters and digits")
    return code


def normalize_otp_session_id(value: object) -> str:
    """Accept the session id as a string, or as a JSON integer sent as its decimal string."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise PydanticCustomError("string_type", "must be a string or an integer")
    session_id = str(value)
    if not 1 <= len(session_id) <= MAX_SESSION_ID_LENGTH:
        raise PydanticCustomError(
            "otp_session_id", f"must be 1 to {MAX_SESSION_ID_LENGTH} characters"
        )
    # Control and unpaired surrogate characters could not have come from send_otp and would
    # break headers, logs or JSON encoding further on.
    if not session_id.isprintable() or not session_id.strip():
        raise PydanticCustomError(
            "otp_session_id", "must contain only printable characters and not be blank"
        )
    return session_id


class CheckOtpRequest(BaseModel):
    """The app's request: the three values of Paynet's check_otp. Other members are ignored."""

    # Unknown members are dropped, so they never reach Paynet. The phone number and the OTP are
    # left out of repr(), so that no debug output or error report that prints the request shows
    # them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    user_gsm: Annotated[
        str,
        BeforeValidator(normalize_user_gsm),
        WithJsonSchema(USER_GSM_SCHEMA),
        Field(
            description=(
                "Turkish mobile number the OTP was sent to, in any common written form: with "
                "or without +90, 0090, 90 or 0 in front, with spaces, hyphens, dots or "
                "brackets, or as a JSON integer. Surrounding whitespace is trimmed."
            ),
            examples=["5324818942", "+90 532 481 89 42", "0532-481-89-42"],
            repr=False,
        ),
    ]
    otp_session_id: Annotated[
        str,
        BeforeValidator(normalize_otp_session_id),
        WithJsonSchema(OTP_SESSION_ID_SCHEMA),
        Field(
            description=(
                "The otp_session_id used with Paynet's send_otp: 1 to 64 printable characters, "
                "not all spaces, or a JSON integer, which is sent as its decimal string"
            ),
            examples=["123456"],
        ),
    ]
    otp_code: Annotated[
        str,
        BeforeValidator(normalize_otp_code),
        WithJsonSchema(OTP_CODE_SCHEMA),
        Field(
            description=(
                "The one-time password the user typed: 1 to 16 ASCII letters and digits. "
                "Surrounding whitespace is trimmed."
            ),
            examples=["ART2"],
            repr=False,
        ),
    ]

    def to_paynet_payload(self) -> dict[str, str]:
        return {
            "user_gsm": self.user_gsm,
            "otp_session_id": self.otp_session_id,
            "otp_code": self.otp_code,
        }


class VerifiedResponse(BaseModel):
    """Body of a 200 response: Paynet verified the OTP."""

    verified: Literal[True] = True
    code: int = Field(description="Paynet's return code, 0 on success")
    message: str = Field(description="Paynet's message, unchanged")
