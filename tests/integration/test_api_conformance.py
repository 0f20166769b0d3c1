"""Schemathesis against the local API: no input gets a 5xx, and every response conforms to
docs/openapi.json.

The requests go over HTTP to the same server that ``make serve`` runs, with the Paynet sandbox
in its normal mode, so that the scenario codes cannot produce the 502 and 504 they stand for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from tests.support.aws import REPOSITORY_ROOT
from tests.support.local_api import LocalApiProcess, local_api_process

OPENAPI_DOCUMENT = REPOSITORY_ROOT / "docs" / "openapi.json"
ALLOWED_ORIGIN = "http://127.0.0.1:9"
# Enough examples to reach every branch of the request model, within about a minute.
MAX_EXAMPLES = 500

# The `printable` format of otp_session_id: what Python's str.isprintable() accepts, not blank.
schemathesis.openapi.format(
    "printable",
    st.text(min_size=1, max_size=64).filter(lambda text: text.isprintable() and text.strip()),
)

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 20261204,
        # No example database, so every run sends the same requests.
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {
            # A valid request for a wrong OTP gets 422, and the attempt limits give 429.
            "positive_data_acceptance": {"expected-statuses": ["200", "204", "422", "429"]},
            # API Gateway, and so the local API, responds to undocumented methods with its own
            # 403 before the function runs, where this check expects 405.
            "unsupported_method": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_path(OPENAPI_DOCUMENT, config=CONFIG)


@schema.hook
def map_body(context: schemathesis.HookContext, body: Any) -> Any:
    """Write whole floats in the members that take integers as integers, 5.0 as 5.

    JSON Schema counts 5.0 as an integer, so the document cannot express that these members
    take only integers written without a fraction, which is what the function accepts.
    """
    if not isinstance(body, dict):
        return body
    mapped = dict(body)
    for name in ("user_gsm", "otp_session_id"):
        value = mapped.get(name)
        if isinstance(value, float) and value.is_integer():
            mapped[name] = int(value)
    return mapped


@pytest.fixture(scope="module")
def local_api() -> Iterator[LocalApiProcess]:
    # High limits, so that most checks reach Paynet instead of ending in 429.
    with local_api_process(
        "--no-scenarios",
        MAX_FAILED_CHECKS_PER_SESSION="100",
        MAX_FAILED_CHECKS_PER_PHONE="1000",
        CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN,
    ) as api:
        yield api


@schema.parametrize()
def test_api_conforms_to_openapi(case: schemathesis.Case, local_api: LocalApiProcess) -> None:
    case.call_and_validate(base_url=local_api.base_url)
