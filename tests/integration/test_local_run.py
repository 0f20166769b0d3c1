"""`make run`: the local-run script, started the way the Makefile starts it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.aws import AWS_TEST_ENVIRONMENT, REPOSITORY_ROOT
from tests.support.events import api_event


def _run(event_path: Path | str, **environ: str) -> dict[str, Any]:
    """Run the script on one event and return the API Gateway response it prints."""
    run = subprocess.run(  # noqa: S603 - this interpreter, with the project's own script
        [sys.executable, "-m", "tests.support.local_run", str(event_path)],
        cwd=REPOSITORY_ROOT,
        env={
            **os.environ,
            **AWS_TEST_ENVIRONMENT,
            "PYTHONPATH": os.pathsep.join([str(REPOSITORY_ROOT / "src"), str(REPOSITORY_ROOT)]),
            **environ,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    _, marker, printed = run.stdout.partition("API Gateway response:")
    assert marker, run.stdout
    response: dict[str, Any] = json.loads(printed)
    return response


def test_default_event_verified() -> None:
    response = _run("events/check_otp.json")
    assert response["statusCode"] == 200
    assert response["body"] == {"verified": True, "code": 0, "message": "Başarılı İşlem"}


@pytest.mark.parametrize(
    ("event_file", "status"),
    [("events/check_otp_wrong_code.json", 422), ("events/check_otp_invalid_gsm.json", 400)],
)
def test_readme_events(event_file: str, status: int) -> None:
    assert _run(event_file)["statusCode"] == status


def test_preflight_with_configured_origin(tmp_path: Path) -> None:
    headers = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    event_path = tmp_path / "preflight.json"
    event_path.write_text(json.dumps(api_event(method="OPTIONS", headers=headers)))

    response = _run(event_path, CORS_ALLOWED_ORIGINS="https://app.example.com")

    assert response["statusCode"] == 204
    assert response["body"] == ""
    allowed = response["multiValueHeaders"]["Access-Control-Allow-Origin"]
    assert allowed == ["https://app.example.com"]
