"""Property-based tests: whatever a client sends, the function returns a response of the
documented shape, and Paynet only ever receives a valid, normalised payload.

Hypothesis runs with ``derandomize=True`` and no example database, so every run draws the same
examples.
"""

from __future__ import annotations

import json
import re
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.events import api_event
from tests.support.invoke import ApiResponse, invoke
from tests.support.paynet_sandbox import ACCEPTED_OTP_CODE, PaynetSandbox

pytestmark = pytest.mark.usefixtures("function_env")

PROPERTY_SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PROBLEM_TYPE = re.compile(r"urn:paynet-otp-check:problem:[a-z-]+")
PAYNET_GSM = re.compile(r"5[0-9]{9}")
PAYNET_OTP = re.compile(r"[A-Za-z0-9]{1,16}")
FIELDS = ("user_gsm", "otp_session_id", "otp_code")

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
field_values = json_values | st.from_regex(r"\+?[0-9 ()\-]{0,20}", fullmatch=True)
request_objects = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(FIELDS, field_values) | {"extra": json_values, "user_gsm ": json_values},
)
raw_bodies = (
    st.none()
    | st.text(max_size=200)
    | json_values.map(json.dumps)
    | request_objects.map(json.dumps)
)


def assert_documented_shape(response: ApiResponse) -> None:
    """Check a response against the contract in the README."""
    assert response.headers["Cache-Control"] == "no-store"
    if response.status == 200:
        assert response.headers["Content-Type"] == "application/json"
        assert set(response.body) == {"verified", "code", "message"}
        assert response.body["verified"] is True
        assert response.body["code"] == 0
        assert isinstance(response.body["message"], str)
        return

    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.body
    assert {"type", "title", "status", "detail"} <= set(body)
    assert PROBLEM_TYPE.fullmatch(body["type"])
    assert body["status"] == response.status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    if response.status == 400:
        assert body["errors"]
        for error in body["errors"]:
            assert set(error) == {"field", "message"}
            assert error["field"] in (*FIELDS, "body")
    if response.status == 422:
        assert body["verified"] is False
        assert isinstance(body["code"], int)
        assert isinstance(body["message"], str)


def assert_valid_paynet_payload(payload: Any) -> None:
    assert isinstance(payload, dict)
    assert set(payload) == set(FIELDS)
    assert PAYNET_GSM.fullmatch(payload["user_gsm"])
    assert PAYNET_OTP.fullmatch(payload["otp_code"])
    assert isinstance(payload["otp_session_id"], str)
    assert 1 <= len(payload["otp_session_id"]) <= 64


@settings(PROPERTY_SETTINGS, max_examples=2500)
@given(raw_body=raw_bodies, base64_encoded=st.booleans())
def test_any_body_gets_documented_answer(
    sandbox: PaynetSandbox, raw_body: str | None, base64_encoded: bool
) -> None:
    sandbox.reset()
    response = invoke(api_event(raw_body=raw_body, base64_encoded=base64_encoded))

    assert response.status in (200, 400, 422)
    assert_documented_shape(response)
    assert len(sandbox.requests) <= 1
    for request in sandbox.requests:
        assert_valid_paynet_payload(request.json())


def _written_forms(digits: str) -> st.SearchStrategy[str]:
    """The ways people write the 10-digit mobile number ``digits``."""
    area, first, second, third = digits[:3], digits[3:6], digits[6:8], digits[8:]
    return st.sampled_from(
        [
            digits,
            f"0{digits}",
            f"90{digits}",
            f"+90{digits}",
            f"0090{digits}",
            f"+90 {area} {first} {second} {third}",
            f"0{area}-{first}-{second}-{third}",
            f"({area}) {first} {second}{third}",
            f" 0 ({area}) {first}.{second}.{third} ",
        ]
    )


mobile_numbers = st.from_regex(r"5[0-9]{9}", fullmatch=True)
otp_codes = st.text(string.ascii_letters + string.digits, min_size=1, max_size=16)
# Session ids of printable characters; the function rejects control and other invisible ones.
session_ids = st.integers(min_value=0, max_value=10**20) | st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=64
).filter(lambda text: text.isprintable() and text.strip() != "")


@settings(PROPERTY_SETTINGS, max_examples=1500)
@given(
    data=st.data(),
    digits=mobile_numbers,
    code=otp_codes | st.just(ACCEPTED_OTP_CODE),
    padding=st.sampled_from(["", " ", "  \t"]),
    session_id=session_ids,
)
def test_valid_request_sends_normalised_payload(
    sandbox: PaynetSandbox,
    data: st.DataObject,
    digits: str,
    code: str,
    padding: str,
    session_id: int | str,
) -> None:
    sandbox.reset()
    written = data.draw(_written_forms(digits))
    request = {
        "user_gsm": written,
        "otp_session_id": session_id,
        "otp_code": f"{padding}{code}{padding}",
        "card_number": "4111111111111111",
    }
    response = invoke(api_event(request))

    assert response.status == (200 if code == ACCEPTED_OTP_CODE else 422)
    assert_documented_shape(response)
    assert len(sandbox.requests) == 1
    assert sandbox.requests[0].json() == {
        "user_gsm": digits,
        "otp_session_id": str(session_id),
        "otp_code": code,
    }
