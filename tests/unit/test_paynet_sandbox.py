"""Tests for the Paynet sandbox, driven over real HTTP on loopback with http.client and urllib3."""

# The expected messages are Turkish, and ruff would flag every dotless i in them as a Latin "i".
# ruff: noqa: RUF001

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3

from tests.support.paynet_sandbox import (
    CHECK_OTP_PATH,
    SCENARIO_DOWN_CODE,
    SCENARIO_SLOW_CODE,
    PaynetSandbox,
    ScriptedResponse,
    paynet_answer,
    paynet_error,
)

# A made-up key in Paynet's format, with the "/" and "+" that real keys may contain.
SECRET_KEY = "sck_test_Zq3/u+Vx9LmN2pQ8rT5wY1kA"
VALID_BODY = {"user_gsm": "5321234567", "otp_session_id": "session-1", "otp_code": "ART2"}
WRONG_CODE_BODY = {**VALID_BODY, "otp_code": "123456"}
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Reply:
    """An HTTP response read in full."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


def check_otp_headers(secret_key: str | None = SECRET_KEY) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if secret_key is not None:
        headers["Authorization"] = f"Basic {secret_key}"
    return headers


def open_connection(
    sandbox: PaynetSandbox, *, timeout: float = 5.0, context: ssl.SSLContext | None = None
) -> http.client.HTTPConnection:
    url = urlsplit(sandbox.base_url)
    assert url.hostname is not None
    if url.scheme == "https":
        return http.client.HTTPSConnection(url.hostname, url.port, timeout=timeout, context=context)
    return http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)


def send(
    connection: http.client.HTTPConnection,
    *,
    method: str = "POST",
    path: str = CHECK_OTP_PATH,
    body: Mapping[str, Any] | bytes | Iterable[bytes] | None = VALID_BODY,
    headers: Mapping[str, str] | None = None,
    encode_chunked: bool = False,
) -> Reply:
    """Send one request on ``connection`` and read the whole response."""
    payload = json.dumps(body).encode() if isinstance(body, Mapping) else body
    connection.request(
        method,
        path,
        body=payload,
        headers=dict(check_otp_headers() if headers is None else headers),
        encode_chunked=encode_chunked,
    )
    with connection.getresponse() as response:
        return Reply(response.status, response.headers, response.read())


def request(sandbox: PaynetSandbox, **options: Any) -> Reply:
    """Send one request on a new connection, then close it."""
    connection = open_connection(sandbox)
    try:
        return send(connection, **options)
    finally:
        connection.close()


def read_tcp_until_closed(connection: socket.socket) -> None:
    """Read the TCP socket under any TLS layer until the peer closes it."""
    while socket.socket.recv(connection, 65536):
        pass


def assert_error_object(reply: Reply, status: int, error_type: str, result_code: int) -> None:
    assert reply.status == status
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    document = reply.json()
    assert document["type"] == error_type
    assert document["code"] == status
    assert document["result_code"] == result_code
    assert isinstance(document["message"], str)
    assert document["message"]


@pytest.fixture
def paynet() -> Iterator[PaynetSandbox]:
    with PaynetSandbox(SECRET_KEY) as sandbox:
        yield sandbox


def test_check_otp_accepts_art2(paynet: PaynetSandbox) -> None:
    reply = request(paynet)

    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.headers["Content-Length"] == str(len(reply.body))
    assert "Başarılı İşlem".encode() in reply.body
    assert reply.json() == {"code": 0, "message": "Başarılı İşlem"}


def test_check_otp_rejects_wrong_code(paynet: PaynetSandbox) -> None:
    reply = request(paynet, body=WRONG_CODE_BODY)

    assert reply.status == 200
    assert reply.json() == {"code": 1, "message": "Doğrulama kodu hatalı"}


@pytest.mark.parametrize("otp_code", [SCENARIO_DOWN_CODE, SCENARIO_SLOW_CODE])
def test_scenario_codes_wrong_by_default(paynet: PaynetSandbox, otp_code: str) -> None:
    reply = request(paynet, body={**VALID_BODY, "otp_code": otp_code})

    assert reply.status == 200
    assert reply.json() == {"code": 1, "message": "Doğrulama kodu hatalı"}


def test_scenario_down_gets_500() -> None:
    with PaynetSandbox(SECRET_KEY, scenarios=True) as sandbox:
        reply = request(sandbox, body={**VALID_BODY, "otp_code": SCENARIO_DOWN_CODE})
        accepted = request(sandbox)
        wrong = request(sandbox, body=WRONG_CODE_BODY)

    assert_error_object(reply, 500, "api_error", 2)
    assert accepted.json()["code"] == 0
    assert wrong.json()["code"] == 1


def test_scenario_slow_sends_nothing() -> None:
    with PaynetSandbox(SECRET_KEY, scenarios=True) as sandbox:
        connection = open_connection(sandbox, timeout=0.5)
        try:
            with pytest.raises(TimeoutError):
                send(connection, body={**VALID_BODY, "otp_code": SCENARIO_SLOW_CODE})
        finally:
            connection.close()

        assert sandbox.requests[0].json()["otp_code"] == SCENARIO_SLOW_CODE


def test_scenarios_need_the_key() -> None:
    headers = check_otp_headers(secret_key="sck_test_wrong")
    with PaynetSandbox(SECRET_KEY, scenarios=True) as sandbox:
        reply = request(
            sandbox, body={**VALID_BODY, "otp_code": SCENARIO_DOWN_CODE}, headers=headers
        )

    assert_error_object(reply, 401, "authorization_error", 7)


def test_key_with_slash_and_plus(paynet: PaynetSandbox) -> None:
    assert "/" in SECRET_KEY
    assert "+" in SECRET_KEY

    reply = request(paynet, headers=check_otp_headers(SECRET_KEY))

    assert reply.status == 200
    assert reply.json()["code"] == 0


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Basic sck_test_other", id="other-key"),
        pytest.param(f"Bearer {SECRET_KEY}", id="bearer"),
        pytest.param(f"Basic {base64.b64encode(SECRET_KEY.encode()).decode()}", id="base64"),
        pytest.param(f"Basic {SECRET_KEY.replace('/', '%2F')}", id="percent-encoded"),
        pytest.param(f"Basic {SECRET_KEY.replace('+', '-')}", id="plus-replaced"),
        pytest.param(f"Basic {SECRET_KEY.upper()}", id="upper-case"),
        pytest.param(f"Basic {SECRET_KEY} ", id="trailing-space"),
    ],
)
def test_wrong_key_gets_401(paynet: PaynetSandbox, authorization: str | None) -> None:
    headers = check_otp_headers(secret_key=None)
    if authorization is not None:
        headers["Authorization"] = authorization

    reply = request(paynet, headers=headers)

    assert_error_object(reply, 401, "authorization_error", 7)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b'{"user_gsm": ', id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"ART2"', id="string"),
        pytest.param({"user_gsm": "5321234567", "otp_session_id": "s"}, id="missing-code"),
        pytest.param({**VALID_BODY, "otp_code": 1234}, id="number-code"),
        pytest.param({**VALID_BODY, "otp_session_id": None}, id="null-session"),
        pytest.param({**VALID_BODY, "otp_code": ""}, id="empty-code"),
        pytest.param({**VALID_BODY, "user_gsm": 5321234567}, id="number-gsm"),
        pytest.param({**VALID_BODY, "user_gsm": "532123456"}, id="nine-digit-gsm"),
        pytest.param({**VALID_BODY, "user_gsm": "4321234567"}, id="gsm-without-5"),
        pytest.param({**VALID_BODY, "user_gsm": "+905321234567"}, id="gsm-with-country"),
        pytest.param({**VALID_BODY, "user_gsm": "5٣٢١٢٣٤٥٦٧"}, id="gsm-arabic-digits"),
        pytest.param({**VALID_BODY, "user_gsm": "532123456\n"}, id="gsm-newline"),
    ],
)
def test_malformed_body_gets_400(paynet: PaynetSandbox, body: Mapping[str, Any] | bytes) -> None:
    reply = request(paynet, body=body)

    assert_error_object(reply, 400, "invalid_request_error", 11)


def test_non_json_content_type_gets_400(paynet: PaynetSandbox) -> None:
    headers = {**check_otp_headers(), "Content-Type": "text/plain"}

    reply = request(paynet, headers=headers)

    assert_error_object(reply, 400, "invalid_request_error", 11)


@pytest.mark.parametrize(
    ("content_length", "status"),
    [
        pytest.param("abc", 400, id="not-a-number"),
        pytest.param("-1", 400, id="negative"),
        pytest.param(str(2 * 1024 * 1024), 413, id="too-large"),
    ],
)
def test_bad_content_length_rejected(
    paynet: PaynetSandbox, content_length: str, status: int
) -> None:
    headers = {**check_otp_headers(), "Content-Length": content_length}

    reply = request(paynet, body=None, headers=headers)

    assert_error_object(reply, status, "invalid_request_error", 11)
    assert reply.headers["Connection"] == "close"


def test_unknown_path_gets_404(paynet: PaynetSandbox) -> None:
    reply = request(paynet, path="/v1/card/check_otp/extra")

    assert_error_object(reply, 404, "no_data_error", 12)


def test_wrong_method_gets_405(paynet: PaynetSandbox) -> None:
    reply = request(paynet, method="GET", body=None)

    assert_error_object(reply, 405, "api_error", 9)
    assert reply.headers["Allow"] == "POST"


def test_requests_recorded(paynet: PaynetSandbox) -> None:
    request(paynet)
    request(paynet, method="GET", path="/health?probe=1", body=None)

    recorded = paynet.requests

    assert len(recorded) == 2
    assert recorded[0].method == "POST"
    assert recorded[0].path == CHECK_OTP_PATH
    assert recorded[0].headers["authorization"] == f"Basic {SECRET_KEY}"
    assert recorded[0].headers["content-type"] == "application/json"
    assert recorded[0].body == json.dumps(VALID_BODY).encode()
    assert recorded[0].json() == VALID_BODY
    assert recorded[1].method == "GET"
    assert recorded[1].path == "/health?probe=1"
    assert recorded[1].body == b""


def test_requests_returns_copy(paynet: PaynetSandbox) -> None:
    request(paynet)

    paynet.requests.clear()

    assert len(paynet.requests) == 1


def test_chunked_request_body(paynet: PaynetSandbox) -> None:
    encoded = json.dumps(VALID_BODY).encode()
    pieces = [encoded[:10], encoded[10:]]

    reply = request(paynet, body=iter(pieces), encode_chunked=True)

    assert reply.json()["code"] == 0
    assert paynet.requests[0].headers["transfer-encoding"] == "chunked"
    assert paynet.requests[0].body == encoded


def test_scripted_respond(paynet: PaynetSandbox) -> None:
    paynet.enqueue(
        ScriptedResponse(
            status=503, body=b"upstream down", headers={"Content-Type": "text/plain", "X-Test": "1"}
        )
    )

    scripted = request(paynet)
    normal = request(paynet)

    assert scripted.status == 503
    assert scripted.body == b"upstream down"
    assert scripted.headers["X-Test"] == "1"
    assert scripted.headers["Content-Length"] == "13"
    assert normal.json()["code"] == 0


def test_scripted_order_fifo(paynet: PaynetSandbox) -> None:
    paynet.enqueue(paynet_answer(5, "Firma bloke"), paynet_answer("0", "Başarılı İşlem"))

    first = request(paynet)
    second = request(paynet)

    assert first.json() == {"code": 5, "message": "Firma bloke"}
    assert second.json() == {"code": "0", "message": "Başarılı İşlem"}


def test_scripted_paynet_error(paynet: PaynetSandbox) -> None:
    paynet.enqueue(paynet_error(500, "api_error", 8, "Sunucu hatası"))

    reply = request(paynet)

    assert reply.status == 500
    assert reply.headers["Content-Type"] == "application/json; charset=utf-8"
    assert reply.json() == {
        "type": "api_error",
        "message": "Sunucu hatası",
        "code": 500,
        "result_code": 8,
    }


def test_scripted_replaces_key_check(paynet: PaynetSandbox) -> None:
    paynet.enqueue(paynet_answer(0, "Başarılı İşlem"))

    reply = request(paynet, headers=check_otp_headers("sck_test_other"))

    assert reply.status == 200
    assert reply.json()["code"] == 0


def test_scripted_skips_other_paths(paynet: PaynetSandbox) -> None:
    paynet.enqueue(ScriptedResponse(status=502))

    other_path = request(paynet, path="/v1/other")
    other_method = request(paynet, method="PUT")
    check_otp = request(paynet)

    assert other_path.status == 404
    assert other_method.status == 405
    assert check_otp.status == 502


def test_scripted_content_length_kept(paynet: PaynetSandbox) -> None:
    paynet.enqueue(
        ScriptedResponse(body=b"short", headers={"Content-Length": "100", "Connection": "close"})
    )
    connection = open_connection(paynet)
    try:
        connection.request("POST", CHECK_OTP_PATH, body=b"{}", headers=check_otp_headers())
        with connection.getresponse() as response:
            assert response.headers["Content-Length"] == "100"
            with pytest.raises(http.client.IncompleteRead):
                response.read()
    finally:
        connection.close()


def test_scripted_transfer_encoding_kept(paynet: PaynetSandbox) -> None:
    paynet.enqueue(
        ScriptedResponse(body=b"5\r\nhello\r\n0\r\n\r\n", headers={"Transfer-Encoding": "chunked"})
    )

    reply = request(paynet)

    assert "Content-Length" not in reply.headers
    assert reply.body == b"hello"


def test_scripted_delay(paynet: PaynetSandbox) -> None:
    paynet.enqueue(ScriptedResponse(status=200, body=b"{}", delay_seconds=0.3))

    started = time.monotonic()
    reply = request(paynet)
    elapsed = time.monotonic() - started

    assert reply.body == b"{}"
    assert elapsed >= 0.3


def test_scripted_close(paynet: PaynetSandbox) -> None:
    paynet.enqueue(ScriptedResponse(action="close"))

    with pytest.raises(http.client.RemoteDisconnected):
        request(paynet)

    assert paynet.requests[0].json() == VALID_BODY


def test_scripted_reset(paynet: PaynetSandbox) -> None:
    paynet.enqueue(ScriptedResponse(action="reset"))

    with pytest.raises(ConnectionResetError) as raised:
        request(paynet)

    # RemoteDisconnected also subclasses ConnectionResetError, but it means a clean close.
    assert not isinstance(raised.value, http.client.RemoteDisconnected)
    assert paynet.requests[0].json() == VALID_BODY


def test_scripted_hang(paynet: PaynetSandbox) -> None:
    paynet.enqueue(ScriptedResponse(action="hang"))
    connection = open_connection(paynet, timeout=0.5)
    try:
        with pytest.raises(TimeoutError):
            send(connection)
    finally:
        connection.close()

    started = time.monotonic()
    paynet.stop()
    stop_seconds = time.monotonic() - started

    assert paynet.requests[0].json() == VALID_BODY
    assert stop_seconds < 1.0


def test_stop_with_open_connection(paynet: PaynetSandbox) -> None:
    connection = open_connection(paynet)
    try:
        send(connection)
        started = time.monotonic()
        paynet.stop()
        stop_seconds = time.monotonic() - started
        leftover = connection.sock.recv(1)
    finally:
        connection.close()

    assert stop_seconds < 1.0
    assert leftover == b""


def test_keep_alive_reuses_connection(paynet: PaynetSandbox) -> None:
    body = json.dumps(VALID_BODY).encode()
    with urllib3.connection_from_url(paynet.base_url, maxsize=1) as pool:
        first = pool.request("POST", CHECK_OTP_PATH, body=body, headers=check_otp_headers())
        second = pool.request("POST", CHECK_OTP_PATH, body=body, headers=check_otp_headers())

    assert first.json()["code"] == 0
    assert second.json()["code"] == 0
    assert paynet.connection_count == 1


def test_keep_alive_timeout_closes_idle() -> None:
    body = json.dumps(VALID_BODY).encode()
    with PaynetSandbox(SECRET_KEY, keep_alive_timeout=0.2) as sandbox:
        with urllib3.connection_from_url(sandbox.base_url, maxsize=1) as pool:
            first = pool.request("POST", CHECK_OTP_PATH, body=body, headers=check_otp_headers())
            count_before_idle = sandbox.connection_count
            time.sleep(0.6)
            second = pool.request("POST", CHECK_OTP_PATH, body=body, headers=check_otp_headers())

        assert first.json()["code"] == 0
        assert second.json()["code"] == 0
        assert count_before_idle == 1
        assert sandbox.connection_count == 2


def test_key_rotation(paynet: PaynetSandbox) -> None:
    before = request(paynet)
    paynet.secret_key = "sck_test_rotated+key/2"
    old_key = request(paynet)
    new_key = request(paynet, headers=check_otp_headers("sck_test_rotated+key/2"))

    assert before.status == 200
    assert old_key.status == 401
    assert new_key.status == 200
    assert new_key.json()["code"] == 0


def test_reset_clears_state(paynet: PaynetSandbox) -> None:
    request(paynet)
    paynet.enqueue(ScriptedResponse(status=500))

    paynet.reset()

    assert paynet.requests == []
    assert paynet.connection_count == 0
    assert request(paynet).status == 200


def test_https_check_otp() -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)

    with PaynetSandbox(SECRET_KEY, ssl_context=server_context) as sandbox:
        connection = open_connection(sandbox, context=client_context)
        try:
            reply = send(connection)
        finally:
            connection.close()

        assert sandbox.base_url.startswith("https://127.0.0.1:")
        assert reply.status == 200
        assert reply.json() == {"code": 0, "message": "Başarılı İşlem"}


def test_https_untrusted_client_fails() -> None:
    trustme = pytest.importorskip("trustme")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    trustme.CA().configure_trust(client_context)

    with PaynetSandbox(SECRET_KEY, ssl_context=server_context) as sandbox:
        connection = open_connection(sandbox, context=client_context)
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                send(connection)
        finally:
            connection.close()

        assert sandbox.requests == []


def test_https_scripted_reset() -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    request_bytes = b"POST /v1/card/check_otp HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"

    with PaynetSandbox(SECRET_KEY, ssl_context=server_context) as sandbox:
        sandbox.enqueue(ScriptedResponse(action="reset"))
        url = urlsplit(sandbox.base_url)
        with (
            socket.create_connection((url.hostname, url.port), timeout=5) as tcp,
            client_context.wrap_socket(tcp, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(request_bytes)
            # Python's ssl module reports a reset as an EOF, so the TCP socket under it is read
            # directly. TLS records such as session tickets may arrive before the RST.
            with pytest.raises(ConnectionResetError):
                read_tcp_until_closed(tls)

        assert sandbox.requests[0].body == b"{}"


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"status": 199}, id="status-199"),
        pytest.param({"status": 600}, id="status-600"),
        pytest.param({"delay_seconds": -1.0}, id="negative-delay"),
        pytest.param({"delay_seconds": float("nan")}, id="nan-delay"),
        pytest.param({"action": "explode"}, id="unknown-action"),
    ],
)
def test_scripted_response_validation(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ScriptedResponse(**options)


def test_enqueue_rejects_other_types(paynet: PaynetSandbox) -> None:
    with pytest.raises(TypeError, match="ScriptedResponse"):
        paynet.enqueue({"status": 500})  # type: ignore[arg-type]


def test_base_url_before_start() -> None:
    with pytest.raises(RuntimeError, match="start"):
        _ = PaynetSandbox(SECRET_KEY).base_url


def test_start_twice(paynet: PaynetSandbox) -> None:
    with pytest.raises(RuntimeError, match="already running"):
        paynet.start()


@pytest.mark.skipif(sys.platform == "win32", reason="sends SIGTERM")
def test_command_line_serves_until_sigterm() -> None:
    command = [
        sys.executable,
        "-m",
        "tests.support.paynet_sandbox",
        "--port",
        "0",
        "--secret-key",
        SECRET_KEY,
    ]
    environment = {**os.environ, "PYTHONWARNINGS": "error"}
    # The command is this interpreter running a module of this repository.
    with subprocess.Popen(  # noqa: S603
        command, cwd=REPO_ROOT, env=environment, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            base_url = process.stdout.readline().strip() if process.stdout else ""
            assert base_url.startswith("http://127.0.0.1:")
            url = urlsplit(base_url)
            connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
            try:
                reply = send(connection)
            finally:
                connection.close()
            process.send_signal(signal.SIGTERM)
            exit_status = process.wait(timeout=5)
        finally:
            if process.poll() is None:
                process.kill()

    assert reply.json()["code"] == 0
    assert exit_status == 0
