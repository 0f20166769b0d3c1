"""The local API of `make serve`: proxy events in, HTTP responses out, and the sandbox scenarios.

Most tests talk over HTTP to the server process that `make serve` runs. The adapter tests run
the same server in this process around a stand-in handler, to see the events it builds.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.support.aws import REPOSITORY_ROOT
from tests.support.local_api import (
    CHECK_OTP_ROUTE,
    LocalApi,
    LocalApiProcess,
    LocalApiServer,
    MalformedProxyResponseError,
    build_event,
    http_response,
    local_api_process,
)
from tests.support.openapi_check import undocumented_parts
from tests.support.paynet_sandbox import SCENARIO_DOWN_CODE, SCENARIO_SLOW_CODE

ALLOWED_ORIGIN = "http://127.0.0.1:9"


@dataclass(frozen=True)
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def send(
    base_url: str,
    method: str = "POST",
    path: str = CHECK_OTP_ROUTE,
    *,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
    timeout: float = 20,
) -> Reply:
    """Send one request on a new connection, with header lines exactly as given."""
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=timeout)
    try:
        connection.putrequest(method, path)
        for name, value in headers or []:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        with connection.getresponse() as response:
            return Reply(response.status, response.getheaders(), response.read())
    finally:
        connection.close()


def check_otp(base_url: str, otp_code: str, *, session: str, user_gsm: str) -> Reply:
    body = {"user_gsm": user_gsm, "otp_session_id": session, "otp_code": otp_code}
    return send(
        base_url,
        body=json.dumps(body).encode(),
        headers=[("Content-Type", "application/json")],
    )


def assert_documented(reply: Reply, method: str = "POST") -> None:
    problems = undocumented_parts(
        method=method,
        path=CHECK_OTP_ROUTE,
        status=reply.status,
        headers=dict(reply.headers),
        body=reply.body,
    )
    assert problems == []


@pytest.fixture(scope="module")
def local_api() -> Iterator[LocalApiProcess]:
    with local_api_process(CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN) as api:
        yield api


def test_accepted_code_verified(local_api: LocalApiProcess) -> None:
    reply = check_otp(local_api.base_url, "ART2", session="ok-1", user_gsm="5320000001")

    assert reply.status == 200
    assert reply.json() == {"verified": True, "code": 0, "message": "Başarılı İşlem"}
    assert_documented(reply)


def test_wrong_code_rejected(local_api: LocalApiProcess) -> None:
    reply = check_otp(local_api.base_url, "123456", session="wrong-1", user_gsm="5320000002")

    assert reply.status == 422
    assert reply.header("Content-Type") == "application/problem+json"
    assert reply.json()["code"] == 1
    assert_documented(reply)


def test_down_scenario_gets_502(local_api: LocalApiProcess) -> None:
    reply = check_otp(
        local_api.base_url, SCENARIO_DOWN_CODE, session="down-1", user_gsm="5320000003"
    )

    assert reply.status == 502
    assert reply.json()["type"] == "urn:paynet-otp-check:problem:paynet-error"
    assert_documented(reply)


def test_slow_scenario_gets_504(local_api: LocalApiProcess) -> None:
    reply = check_otp(
        local_api.base_url, SCENARIO_SLOW_CODE, session="slow-1", user_gsm="5320000004"
    )

    assert reply.status == 504
    assert reply.json()["type"] == "urn:paynet-otp-check:problem:paynet-timeout"
    assert_documented(reply)


def test_sixth_wrong_code_limited(local_api: LocalApiProcess) -> None:
    statuses = [
        check_otp(local_api.base_url, "000000", session="limit-1", user_gsm="5320000005").status
        for _ in range(5)
    ]
    limited = check_otp(local_api.base_url, "ART2", session="limit-1", user_gsm="5320000005")

    assert statuses == [422] * 5
    assert limited.status == 429
    assert int(limited.header("Retry-After") or "0") > 0
    assert limited.json()["verified"] is False
    assert_documented(limited)


def test_invalid_request_gets_400(local_api: LocalApiProcess) -> None:
    reply = send(local_api.base_url, body=b"{", headers=[("Content-Type", "application/json")])

    assert reply.status == 400
    assert reply.json()["errors"] == [{"field": "body", "message": "must be valid JSON"}]
    assert_documented(reply)


def test_preflight_for_allowed_origin(local_api: LocalApiProcess) -> None:
    reply = send(
        local_api.base_url,
        "OPTIONS",
        headers=[
            ("Origin", ALLOWED_ORIGIN),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    )

    assert reply.status == 204
    assert reply.body == b""
    assert reply.header("Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    assert reply.header("Access-Control-Allow-Methods") == "POST, OPTIONS"
    assert_documented(reply, "OPTIONS")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", CHECK_OTP_ROUTE), ("POST", "/v1/card/other"), ("PROPFIND", CHECK_OTP_ROUTE)],
)
def test_unrouted_request_gets_gateway_403(
    local_api: LocalApiProcess, method: str, path: str
) -> None:
    reply = send(local_api.base_url, method, path)

    assert reply.status == 403
    assert reply.json() == {"message": "Missing Authentication Token"}


def test_requests_logged_with_latency(local_api: LocalApiProcess) -> None:
    check_otp(local_api.base_url, "000000", session="log-1", user_gsm="5320000006")

    local_api.wait_for_line(
        local_api.stderr_lines,
        r"local_api: POST /v1/card/check_otp 422 [0-9]+ ms \(request id [0-9a-f-]{36}\)$",
    )


def test_function_logs_carry_request_id(local_api: LocalApiProcess) -> None:
    reply = check_otp(local_api.base_url, "ART2", session="log-2", user_gsm="5320000007")
    assert reply.status == 200

    logged = local_api.wait_for_line(
        local_api.stderr_lines, r"POST /v1/card/check_otp 200 .*request id ([0-9a-f-]{36})"
    )
    local_api.wait_for_line(
        local_api.stdout_lines, f'"correlation_id":"{logged.group(1)}".*"outcome":"verified"'
    )


def _child_process_ids(process_id: int) -> list[int]:
    children = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == process_id:
            children.append(int(stat_file.parent.name))
    return children


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads child processes from /proc")
def test_ctrl_c_stops_everything() -> None:
    with local_api_process() as api:
        assert check_otp(api.base_url, "ART2", session="stop-1", user_gsm="5320000008").status == (
            200
        )
        children = _child_process_ids(api.process.pid)

        exit_status = api.stop()

    assert exit_status == 0
    assert children, "the local AWS server runs as a child process"
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert not any("Traceback" in line for line in api.stderr_lines)
    assert any("Stopping the local API" in line for line in api.stderr_lines)


def test_make_serve_passes_port() -> None:
    run = subprocess.run(
        ["make", "-n", "serve", "PORT=4321"],  # noqa: S607 - make from PATH, as developers run it
        cwd=REPOSITORY_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert "-m tests.support.local_api --port 4321" in run.stdout


# The adapter, around a stand-in handler.


class RecordingHandler:
    """Stands in for the Lambda handler: records events and returns a set proxy response."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        if isinstance(self.response, Exception):
            raise self.response
        return self.response


@pytest.fixture
def serve_handler() -> Iterator[Any]:
    """Serve a handler in this process on a free port; returns a function taking the handler."""
    servers: list[LocalApiServer] = []
    threads: list[threading.Thread] = []

    def start(handler: RecordingHandler) -> str:
        server = LocalApiServer(("127.0.0.1", 0), LocalApi(handler))
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append(server)
        threads.append(thread)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=5)


OK_RESPONSE = {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "ok"}


def test_event_has_both_header_maps(serve_handler: Any) -> None:
    handler = RecordingHandler(OK_RESPONSE)
    base_url = serve_handler(handler)

    send(
        base_url,
        path=f"{CHECK_OTP_ROUTE}?a=1&b=2&b=3",
        body=b'{"x": 1}',
        headers=[("X-Repeated", "one"), ("x-repeated", "two"), ("Content-Type", "text/plain")],
    )

    (event,) = handler.events
    assert event["httpMethod"] == "POST"
    assert event["path"] == CHECK_OTP_ROUTE
    assert event["resource"] == CHECK_OTP_ROUTE
    assert event["headers"]["X-Repeated"] == "two"
    assert event["multiValueHeaders"]["X-Repeated"] == ["one", "two"]
    assert event["headers"]["Content-Type"] == "text/plain"
    assert event["queryStringParameters"] == {"a": "1", "b": "3"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1"], "b": ["2", "3"]}
    assert event["body"] == '{"x": 1}'
    assert event["isBase64Encoded"] is False
    assert event["requestContext"]["httpMethod"] == "POST"
    assert event["requestContext"]["resourcePath"] == CHECK_OTP_ROUTE
    assert event["requestContext"]["identity"]["sourceIp"] == "127.0.0.1"


def test_each_event_has_its_own_request_id(serve_handler: Any) -> None:
    handler = RecordingHandler(OK_RESPONSE)
    base_url = serve_handler(handler)

    send(base_url, body=b"{}")
    send(base_url, body=b"{}")

    request_ids = [event["requestContext"]["requestId"] for event in handler.events]
    assert len(set(request_ids)) == 2
    assert all(re.fullmatch(r"[0-9a-f-]{36}", request_id) for request_id in request_ids)


def test_binary_body_sent_base64(serve_handler: Any) -> None:
    handler = RecordingHandler(OK_RESPONSE)
    base_url = serve_handler(handler)
    body = bytes([0xFF, 0x00, 0x80, 0x7B])

    send(base_url, body=body, headers=[("Content-Type", "application/octet-stream")])

    (event,) = handler.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_no_body_is_null(serve_handler: Any) -> None:
    handler = RecordingHandler(OK_RESPONSE)
    base_url = serve_handler(handler)

    send(base_url, "OPTIONS")

    (event,) = handler.events
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    assert event["queryStringParameters"] is None


def test_response_sends_both_header_maps(serve_handler: Any) -> None:
    response = {
        "statusCode": 201,
        "headers": {"X-Single": "s", "X-Both": "from headers"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Both": ["from multi"]},
        "body": "created",
        "isBase64Encoded": False,
    }
    base_url = serve_handler(RecordingHandler(response))

    reply = send(base_url, body=b"{}")

    assert reply.status == 201
    assert reply.body == b"created"
    assert [value for name, value in reply.headers if name == "Set-Cookie"] == ["a=1", "b=2"]
    assert reply.header("X-Single") == "s"
    assert reply.header("X-Both") == "from multi"


def test_response_body_decoded_from_base64(serve_handler: Any) -> None:
    body = bytes(range(256))
    response = {
        "statusCode": 200,
        "headers": {"Content-Type": "application/octet-stream"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }
    base_url = serve_handler(RecordingHandler(response))

    reply = send(base_url, body=b"{}")

    assert reply.body == body
    assert reply.header("Content-Length") == "256"


def test_unrouted_request_skips_function(serve_handler: Any) -> None:
    handler = RecordingHandler(OK_RESPONSE)
    base_url = serve_handler(handler)

    reply = send(base_url, "GET", "/")

    assert reply.status == 403
    assert reply.header("x-amzn-ErrorType") == "MissingAuthenticationTokenException"
    assert handler.events == []


@pytest.mark.parametrize(
    "response",
    [RuntimeError("boom"), {"body": "no status"}, {"statusCode": 200, "body": 5}, None],
    ids=["raises", "no status", "body not a string", "no response"],
)
def test_failed_invocation_gets_gateway_502(serve_handler: Any, response: Any) -> None:
    base_url = serve_handler(RecordingHandler(response))

    reply = send(base_url, body=b"{}")

    assert reply.status == 502
    assert reply.json() == {"message": "Internal server error"}


def test_chunked_body_gets_411(serve_handler: Any) -> None:
    handler = RecordingHandler(OK_RESPONSE)
    base_url = serve_handler(handler)

    reply = send(base_url, headers=[("Transfer-Encoding", "chunked")])

    assert reply.status == 411
    assert handler.events == []


@pytest.mark.parametrize(
    "result",
    [
        [],
        {"statusCode": True},
        {"statusCode": 99},
        {"statusCode": 200, "multiValueHeaders": {"A": "not a list"}},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_malformed_proxy_responses_rejected(result: Any) -> None:
    with pytest.raises(MalformedProxyResponseError):
        http_response(result)


def test_build_event_request_time() -> None:
    now = datetime(2026, 12, 4, 10, 15, 30, tzinfo=UTC)
    event = build_event(
        method="POST",
        target=CHECK_OTP_ROUTE,
        headers=[("Host", "127.0.0.1:3000")],
        body=b"",
        source_ip="127.0.0.1",
        request_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
        now=now,
    )

    assert event["requestContext"]["requestTime"] == "04/Dec/2026:10:15:30 +0000"
    assert event["requestContext"]["requestTimeEpoch"] == 1796379330000
    assert event["requestContext"]["domainName"] == "127.0.0.1:3000"
    assert event["requestContext"]["path"] == f"/local{CHECK_OTP_ROUTE}"


def test_sigterm_stops_too() -> None:
    with local_api_process() as api:
        api.process.send_signal(signal.SIGTERM)
        exit_status = api.process.wait(timeout=20)

    assert exit_status == 0
    assert any("Stopping the local API" in line for line in api.stderr_lines)
