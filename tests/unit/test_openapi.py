"""docs/openapi.json: generated from the code, complete, and with examples that fit it."""

from __future__ import annotations

import re
import string
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from otp_check.models import (
    MAX_PHONE_INPUT_LENGTH,
    OTP_CODE_SCHEMA,
    USER_GSM_SCHEMA,
    CheckOtpRequest,
    normalize_otp_code,
    normalize_user_gsm,
)
from otp_check.openapi import main, openapi_document, render
from tests.support.openapi_check import OPENAPI_PATH, load_document, schema_validator

CHECK_OTP_PATH = "/v1/card/check_otp"
CHECK_OTP_STATUSES = {"200", "400", "413", "415", "422", "429", "500", "502", "503", "504"}
PREFLIGHT_STATUSES = {"204", "413", "415"}


def _media_types(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every documented response body and request body, named by where it is."""
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                for media_type, content in (response.get("content") or {}).items():
                    found.append((f"{method} {path} {status} {media_type}", content))
            request_body = operation.get("requestBody")
            if request_body is not None:
                for media_type, content in request_body["content"].items():
                    found.append((f"{method} {path} request {media_type}", content))
    for name, response in document["components"]["responses"].items():
        for media_type, content in response["content"].items():
            found.append((f"component {name} {media_type}", content))
    return found


def test_checked_in_document_matches_code() -> None:
    checked_in = OPENAPI_PATH.read_text("utf-8")
    generated = render(openapi_document())

    assert checked_in == generated, "docs/openapi.json is out of date: run `make openapi`"


def test_generator_writes_file(tmp_path: Any) -> None:
    output = tmp_path / "openapi.json"

    assert main([str(output)]) == 0
    assert output.read_text("utf-8") == OPENAPI_PATH.read_text("utf-8")


def test_every_status_documented() -> None:
    operations = load_document()["paths"][CHECK_OTP_PATH]

    assert set(operations) == {"post", "options"}
    assert set(operations["post"]["responses"]) == CHECK_OTP_STATUSES
    assert set(operations["options"]["responses"]) == PREFLIGHT_STATUSES
    assert set(load_document()["components"]["responses"]) == {"NotFound", "MethodNotAllowed"}


def test_errors_are_problem_details() -> None:
    operations = load_document()["paths"][CHECK_OTP_PATH]
    responses = {**operations["post"]["responses"], **operations["options"]["responses"]}

    for status, response in responses.items():
        if int(status) < 400:
            continue
        assert list(response["content"]) == ["application/problem+json"], status
        schema = response["content"]["application/problem+json"]["schema"]
        component = schema["$ref"].removeprefix("#/components/schemas/")
        problem = load_document()["components"]["schemas"][component]
        assert {"type", "title", "status", "detail"} <= set(problem["required"]), status
        assert problem["properties"]["status"]["const"] == int(status), status


def test_powertools_validation_schemas_left_out() -> None:
    schemas = load_document()["components"]["schemas"]

    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


def test_every_response_has_cache_control() -> None:
    for operation in load_document()["paths"][CHECK_OTP_PATH].values():
        for status, response in operation["responses"].items():
            assert response["headers"]["Cache-Control"]["required"] is True, status


def test_examples_fit_their_schemas() -> None:
    bodies = _media_types(load_document())
    examples_checked = 0
    for where, content in bodies:
        validator = schema_validator(content["schema"])
        assert content.get("examples"), f"{where} has no example"
        for name, example in content["examples"].items():
            errors = [error.message for error in validator.iter_errors(example["value"])]
            assert errors == [], f"{where} example {name!r}"
            examples_checked += 1

    assert examples_checked >= len(bodies)


def test_request_examples_accepted_by_model() -> None:
    operation = load_document()["paths"][CHECK_OTP_PATH]["post"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]

    assert examples
    for example in examples.values():
        assert CheckOtpRequest.model_validate(example["value"]).user_gsm == "5324818942"


@pytest.mark.parametrize(
    "user_gsm",
    [
        "5324818942",
        "05324818942",
        "905324818942",
        "00905324818942",
        "+90 532 481 89 42",
        "0532-481-89-42",
        "(532) 481 8942",
        "0532.481.89.42",
    ],
)
def test_user_gsm_schema_accepts_written_forms(user_gsm: str) -> None:
    schema = load_document()["components"]["schemas"]["CheckOtpRequest"]

    assert schema_validator(schema["properties"]["user_gsm"]).is_valid(user_gsm)
    assert (
        CheckOtpRequest.model_validate(
            {"user_gsm": user_gsm, "otp_session_id": "1", "otp_code": "1"}
        ).user_gsm
        == "5324818942"
    )


@pytest.mark.parametrize(
    "user_gsm",
    ["4324818942", "+91 532 481 89 42", "532481894", "+0905324818942", "5324818942a", ""],
)
def test_user_gsm_schema_rejects_other_numbers(user_gsm: str) -> None:
    schema = load_document()["components"]["schemas"]["CheckOtpRequest"]

    assert not schema_validator(schema["properties"]["user_gsm"]).is_valid(user_gsm)


def _accepted(normalize: Any, value: str) -> bool:
    try:
        normalize(value)
    except ValueError:
        return False
    return True


@st.composite
def _phone_like_text(draw: st.DrawFn) -> str:
    """Draw digits with the country and trunk prefixes, valid or not, and separators between."""
    prefix = draw(st.sampled_from(["", "0", "90", "0090", "+90", "+9", "+0090", "00", "9"]))
    digits = draw(
        st.from_regex("5[0-9]{9}", fullmatch=True)
        | st.text(alphabet=string.digits, min_size=8, max_size=11)
    )
    # Tabs and plus signs inside a number are invalid, and the plain text strategy sends them.
    separators = st.sampled_from(["", "", "", " ", "-", ".", "(", ")"])
    return "".join(character + draw(separators) for character in prefix + digits)


@settings(max_examples=500, derandomize=True)
@given(st.text(alphabet="+0123456789 ().-\t", max_size=MAX_PHONE_INPUT_LENGTH) | _phone_like_text())
def test_user_gsm_pattern_matches_validator(user_gsm: str) -> None:
    # The pattern leaves out the surrounding whitespace that the validator trims.
    assume(user_gsm == user_gsm.strip() and len(user_gsm) <= MAX_PHONE_INPUT_LENGTH)
    pattern = re.compile(USER_GSM_SCHEMA["anyOf"][0]["pattern"])

    assert bool(pattern.search(user_gsm)) == _accepted(normalize_user_gsm, user_gsm)


@settings(max_examples=1000, derandomize=True)
@given(st.text(alphabet=string.ascii_letters + string.digits + "-_ é", max_size=20))
def test_otp_code_pattern_matches_validator(otp_code: str) -> None:
    assume(otp_code == otp_code.strip())
    pattern = re.compile(OTP_CODE_SCHEMA["pattern"])

    assert bool(pattern.search(otp_code)) == _accepted(normalize_otp_code, otp_code)
