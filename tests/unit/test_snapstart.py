"""Lambda SnapStart: the template option and the runtime hooks around the snapshot.

The template is transformed with SAM's translator and resolved for each value of the SnapStart
parameter, as CloudFormation does at deploy time (tests/support/cloudformation.py). The hooks
run against the Paynet sandbox and moto's server, as the Lambda runtime would call them.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from otp_check import dependencies
from tests.support.aws import LocalAws
from tests.support.cloudformation import load_template, resolve, sam_transform
from tests.support.events import api_event, valid_request
from tests.support.invoke import invoke
from tests.support.paynet_sandbox import PaynetSandbox

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
FUNCTION_ID = "OtpCheckFunction"


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return sam_transform(load_template(TEMPLATE_PATH))


def test_snapstart_off_by_default(transformed: dict[str, Any]) -> None:
    function = resolve(transformed)["Resources"][FUNCTION_ID]["Properties"]

    assert "SnapStart" not in function


def test_snapstart_on_for_versions(transformed: dict[str, Any]) -> None:
    function = resolve(transformed, {"SnapStart": "on"})["Resources"][FUNCTION_ID]["Properties"]

    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}


def test_snapstart_parameter_values() -> None:
    parameter = load_template(TEMPLATE_PATH)["Parameters"]["SnapStart"]

    assert parameter["Default"] == "off"
    assert parameter["AllowedValues"] == ["off", "on"]


def test_hooks_registered_with_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: dict[str, object] = {}
    runtime_module = types.ModuleType("snapshot_restore_py")
    runtime_module.register_before_snapshot = lambda hook: registered.update(before=hook)  # type: ignore[attr-defined]
    runtime_module.register_after_restore = lambda hook: registered.update(after=hook)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime_module)

    assert dependencies.register_snapstart_hooks() is True
    assert registered["before"] is dependencies.prepare_for_snapshot
    assert registered["after"] is dependencies.restore_after_snapshot


def test_hooks_skipped_outside_lambda() -> None:
    assert dependencies.register_snapstart_hooks() is False


@pytest.mark.usefixtures("function_env")
def test_snapshot_holds_no_secret_or_connection(
    sandbox: PaynetSandbox, local_aws: LocalAws
) -> None:
    assert invoke(api_event(valid_request())).status == 200
    local_aws.reset()
    sandbox.reset()

    dependencies.prepare_for_snapshot()
    # The snapshot is taken here: nothing may have been fetched or connected since the reset.
    assert local_aws.calls["GetSecretValue"] == 0
    assert sandbox.connection_count == 0

    dependencies.restore_after_snapshot()
    assert local_aws.calls["GetSecretValue"] == 1

    assert invoke(api_event(valid_request())).status == 200
    assert local_aws.calls["GetSecretValue"] == 1
    assert sandbox.connection_count == 1


@pytest.mark.usefixtures("function_env")
def test_restore_survives_missing_secret(
    sandbox: PaynetSandbox, local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYNET_SECRET_ID", "paynet/otp-check/does-not-exist")
    dependencies.prepare_for_snapshot()

    dependencies.restore_after_snapshot()

    assert local_aws.calls["GetSecretValue"] == 1
    assert sandbox.connection_count == 0
    # The failure was not cached, so the invocation fetches the secret again.
    assert invoke(api_event(valid_request())).status == 500
    assert local_aws.calls["GetSecretValue"] == 2
