"""Faults on the Paynet side: stale connections, oversized and stalling responses, TLS."""

from __future__ import annotations

import io
import json
import socket
import ssl
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from otp_check.errors import PaynetInvalidResponseError
from otp_check.paynet import MAX_RESPONSE_BYTES, Urllib3PaynetClient
from tests.conftest import TEST_SECRET_KEY
from tests.support.events import api_event, valid_request
from tests.support.invoke import invoke, invoke_timed
from tests.support.lambda_context import FakeLambdaContext
from tests.support.paynet_sandbox import PaynetSandbox, ScriptedResponse

pytestmark = pytest.mark.usefixtures("function_env")


def _log_messages(buffer: io.StringIO) -> list[str]:
    return [json.loads(line)["message"] for line in buffer.getvalue().splitlines()]


def test_stale_keep_alive_connection_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    with PaynetSandbox(TEST_SECRET_KEY, keep_alive_timeout=0.2) as sandbox:
        monkeypatch.setenv("PAYNET_BASE_URL", sandbox.base_url)
        assert invoke(api_event(valid_request())).status == 200

        # The sandbox closes the idle connection; the next warm invocation finds it closed.
        time.sleep(0.6)
        assert invoke(api_event(valid_request())).status == 200

        assert len(sandbox.requests) == 2
        assert sandbox.connection_count == 2


def test_huge_response_returns_502(sandbox: PaynetSandbox) -> None:
    body = b'{"code": 0, "message": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    sandbox.enqueue(ScriptedResponse(body=body))
    response = invoke(api_event(valid_request()))
    assert response.status == 502
    assert len(sandbox.requests) == 1


def test_huge_response_read_bounded(sandbox: PaynetSandbox) -> None:
    # The client alone, so that the peak measures its reading and not the handler's other work.
    body = b'{"code": 0, "message": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    sandbox.enqueue(ScriptedResponse(body=body))
    client = Urllib3PaynetClient(sandbox.base_url, connect_timeout=2, read_timeout=5)
    payload = {"user_gsm": "5324818942", "otp_session_id": "1", "otp_code": "ART2"}

    tracemalloc.start()
    try:
        with pytest.raises(PaynetInvalidResponseError):
            client.check_otp(payload, secret_key=TEST_SECRET_KEY, deadline=time.monotonic() + 5)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        client.close()

    assert len(sandbox.requests) == 1
    # Reading stops a little past MAX_RESPONSE_BYTES, far below the 8 MiB that was sent.
    assert peak_bytes < 16 * MAX_RESPONSE_BYTES


def test_refused_connection_retried_once(
    monkeypatch: pytest.MonkeyPatch, log_output: io.StringIO
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PAYNET_BASE_URL", f"http://127.0.0.1:{port}")

    response = invoke(api_event(valid_request()))

    assert response.status == 502
    messages = _log_messages(log_output)
    assert messages.count("Paynet connection failed, retrying once") == 1


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_sandbox(certificate_authority: trustme.CA) -> Iterator[PaynetSandbox]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    with PaynetSandbox(TEST_SECRET_KEY, ssl_context=context) as sandbox:
        yield sandbox


def test_untrusted_certificate_rejected(
    tls_sandbox: PaynetSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYNET_BASE_URL", tls_sandbox.base_url)
    response = invoke(api_event(valid_request()))
    assert response.status == 502
    # The handshake failed, so the request, and the key in it, never reached the server.
    assert tls_sandbox.requests == []


def test_configured_ca_bundle_trusted(
    tls_sandbox: PaynetSandbox,
    certificate_authority: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "paynet-ca.pem"
    certificate_authority.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("PAYNET_BASE_URL", tls_sandbox.base_url)
    monkeypatch.setenv("PAYNET_CA_BUNDLE", str(bundle))

    response = invoke(api_event(valid_request()))

    assert tls_sandbox.base_url.startswith("https://")
    assert response.status == 200
    assert len(tls_sandbox.requests) == 1


_TURKISH_SUCCESS = b'{"code": 0, "message": "Ba\xc5\x9far\xc4\xb1l\xc4\xb1 \xc4\xb0\xc5\x9flem"}'


@pytest.mark.parametrize(
    "scripted",
    [
        ScriptedResponse(body=_TURKISH_SUCCESS, byte_interval_seconds=0.3),
        ScriptedResponse(body=_TURKISH_SUCCESS, head_byte_interval_seconds=0.3),
    ],
    ids=["body", "status-line-and-headers"],
)
def test_byte_drip_returns_504_in_time(
    sandbox: PaynetSandbox, monkeypatch: pytest.MonkeyPatch, scripted: ScriptedResponse
) -> None:
    # Each byte arrives well within the read timeout. Socket timeouts bound each read, so only
    # the invocation's deadline can end this.
    monkeypatch.setenv("PAYNET_TIMEOUT_SECONDS", "2")
    # A first invocation creates the AWS clients and reads the secret. On a loaded machine that
    # can take all of the 0.5 s that the 3 s timeout leaves before the Paynet call, and then the
    # function rightly gives up without sending the request this test is about.
    assert invoke(api_event(valid_request())).status == 200
    sandbox.reset()
    sandbox.enqueue(scripted)
    context = FakeLambdaContext(timeout_ms=3_000)

    response, elapsed = invoke_timed(api_event(valid_request()), context)

    assert response.status == 504
    # The Lambda timeout is 3 s, and the function keeps 1 s of it for its own response.
    assert elapsed < 3.0
    assert len(sandbox.requests) == 1
    # The dripping response came on the first invocation's keep-alive connection, which was
    # closed at the deadline, so the next call opens a new one.
    assert invoke(api_event(valid_request())).status == 200
    assert sandbox.connection_count == 1
