"""Every event in events/, as `sam local invoke` would send it, against the sandbox."""

from __future__ import annotations

import pytest

from tests.support.events import EVENTS_DIR, load_event
from tests.support.invoke import invoke
from tests.support.paynet_sandbox import PaynetSandbox

EXPECTED_STATUS = {
    "check_otp.json": 200,
    "check_otp_base64.json": 200,
    "check_otp_wrong_code.json": 422,
    "check_otp_invalid_gsm.json": 400,
    "check_otp_empty_body.json": 400,
    "unknown_route.json": 404,
}

# env.json contains `sam local invoke --env-vars` settings; the template tests check it.
EVENT_FILES = sorted(path.name for path in EVENTS_DIR.glob("*.json") if path.name != "env.json")


def test_every_event_has_expectation() -> None:
    assert sorted(EXPECTED_STATUS) == EVENT_FILES


@pytest.mark.usefixtures("function_env")
@pytest.mark.parametrize("name", EVENT_FILES)
def test_event_status(sandbox: PaynetSandbox, name: str) -> None:
    response = invoke(load_event(name))
    assert response.status == EXPECTED_STATUS[name]
    paynet_called = EXPECTED_STATUS[name] in (200, 422)
    assert len(sandbox.requests) == (1 if paynet_called else 0)
