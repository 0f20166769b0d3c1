"""A Paynet stand-in that serves ``POST /v1/card/check_otp`` over real HTTP on loopback.

The sandbox checks the ``Authorization: Basic <secret_key>`` header and the request body the way
Paynet does, and it responds with Paynet's JSON objects: ``{"code", "message"}`` on HTTP 200 and
the error object ``{"type", "message", "code", "result_code"}`` on any other status. The error
types and return codes follow Paynet's API documentation (doc.paynet.com.tr, "Hata Kodları").
It accepts the OTP code ``ART2`` for any session and rejects every other code.

In scenario mode, two more OTP codes act out Paynet failures: ``DOWN1`` gets HTTP 500 with
Paynet's error object, and ``SLOW1`` gets no response until the connection is closed. The local
API (``make serve``) runs the sandbox in this mode so that app developers can see the function's
502 and 504 responses. The mode is off by default, so these codes are wrong codes like any other.

Tests can queue scripted responses, including delayed, dropped, reset and hanging connections, and
read back every request that arrived. Run it on its own from the repository root with::

    python -m tests.support.paynet_sandbox --port 8081 --secret-key sck_test_...
"""

# Paynet's messages are Turkish, and ruff would flag every dotless i in them as a Latin "i".

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import FrameType, TracebackType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

__all__ = [
    "ACCEPTED_OTP_CODE",
    "CHECK_OTP_PATH",
    "SCENARIO_DOWN_CODE",
    "SCENARIO_SLOW_CODE",
    "PaynetSandbox",
    "RecordedRequest",
    "ScriptedResponse",
    "paynet_answer",
    "paynet_error",
]

logger = logging.getLogger(__name__)

CHECK_OTP_PATH = "/v1/card/check_otp"
ACCEPTED_OTP_CODE = "ART2"
# OTP codes that act out a Paynet failure in scenario mode.
SCENARIO_DOWN_CODE = "DOWN1"
SCENARIO_SLOW_CODE = "SLOW1"
# How long a SLOW1 request waits before the sandbox closes the connection without a response. It
# only has to outlast the client's read timeout, and the bound keeps waiting connection threads
# from piling up while the sandbox runs.
SLOW_SCENARIO_SECONDS = 30.0

SUCCESS_MESSAGE = "Başarılı İşlem"
WRONG_OTP_MESSAGE = "Doğrulama kodu hatalı"
UNAUTHORIZED_MESSAGE = "Yetkisiz erişim: secret key geçersiz"
NOT_FOUND_MESSAGE = "İstenen kaynak bulunamadı"
METHOD_NOT_ALLOWED_MESSAGE = "Bu HTTP yöntemine izin verilmiyor"
SERVER_ERROR_MESSAGE = "Sistem hatası"

# Paynet return codes, sent as "code" on HTTP 200 and as "result_code" in error objects.
RESULT_SUCCESSFUL = 0
RESULT_UNSUCCESSFUL = 1
RESULT_ERROR = 2
RESULT_UNAUTHORIZED = 7
RESULT_NOT_IMPLEMENTED = 9
RESULT_BAD_REQUEST = 11
RESULT_NO_DATA = 12

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

# A check_otp request is about 100 bytes, so anything near this size is a client bug.
MAX_REQUEST_BODY_BYTES = 1024 * 1024
# Maximum length of a chunk-size line or trailer line in a chunked request body.
_MAX_CHUNK_LINE_BYTES = 1024
_CHUNK_SIZE_PATTERN = re.compile(rb"[0-9A-Fa-f]{1,8}")

# A client that connects and never starts TLS would otherwise hold a thread until stop().
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
# Upper bound for stop() to wait for connection threads after their sockets are shut down.
_THREAD_JOIN_TIMEOUT_SECONDS = 5.0

# ASCII digits only, because \d would also match other Unicode digits.
_USER_GSM_PATTERN = re.compile(r"5[0-9]{9}")
_CHECK_OTP_FIELDS = ("user_gsm", "otp_session_id", "otp_code")

ScriptedAction = Literal["respond", "close", "reset", "hang"]
_SCRIPTED_ACTIONS: tuple[str, ...] = get_args(ScriptedAction)

# Type of the request argument of socketserver's methods. TCP servers pass only sockets.
_Request = socket.socket | tuple[bytes, socket.socket]


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the sandbox received it, Authorization header included."""

    method: str
    # Request target as sent, including any query string.
    path: str
    # Header names are lower-cased. A repeated header has its values joined with ", ".
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Parse the body as UTF-8 JSON."""
        return json.loads(self.body.decode("utf-8"))


@dataclass(frozen=True)
class ScriptedResponse:
    """Overrides the sandbox's normal response for one request.

    ``delay_seconds`` applies before every action. ``close`` reads the request and then closes
    the connection without responding, ``reset`` aborts it with a TCP RST (SO_LINGER 0), and
    ``hang`` never responds until the sandbox stops. ``respond`` sends ``status``, ``headers``
    and ``body``, adding Content-Length unless ``headers`` contain Content-Length or
    Transfer-Encoding. A ``Connection: close`` header makes the sandbox close the connection
    after the response. ``head_byte_interval_seconds`` and ``byte_interval_seconds`` send the
    status line with the headers, and the body, one byte at a time with that pause before each.

    NOTE: over HTTPS the RST of ``reset`` does reach the client, but Python 3.11's ssl module
    with OpenSSL 3.0 reports it as an unexpected EOF, so a Python client sees it like ``close``.
    """

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    action: ScriptedAction = "respond"
    byte_interval_seconds: float = 0.0
    head_byte_interval_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not 200 <= self.status <= 599:
            raise ValueError(
                f"status must be a final HTTP status from 200 to 599, not {self.status}"
            )
        if not math.isfinite(self.delay_seconds) or self.delay_seconds < 0:
            raise ValueError(f"delay_seconds must be finite and >= 0, not {self.delay_seconds}")
        for name in ("byte_interval_seconds", "head_byte_interval_seconds"):
            interval = getattr(self, name)
            if not math.isfinite(interval) or interval < 0:
                raise ValueError(f"{name} must be finite and >= 0, not {interval}")
        if self.action not in _SCRIPTED_ACTIONS:
            raise ValueError(f"action must be one of {_SCRIPTED_ACTIONS}, not {self.action!r}")


def paynet_answer(code: int | str, message: str) -> ScriptedResponse:
    """Build an HTTP 200 response with Paynet's ``{"code", "message"}`` object.

    ``code`` may be a string because Paynet's documentation types it as one.
    """
    return _json_response(200, {"code": code, "message": message})


def paynet_error(status: int, type_: str, result_code: int, message: str) -> ScriptedResponse:
    """Build a non-200 response with Paynet's error object.

    Paynet documents the types ``api_error``, ``invalid_request_error``,
    ``authorization_error`` and ``no_data_error``. Others are sent as given, so that tests can
    check how a client copes with them.
    """
    document = {"type": type_, "message": message, "code": status, "result_code": result_code}
    return _json_response(status, document)


def _json_response(status: int, document: Mapping[str, Any]) -> ScriptedResponse:
    # ensure_ascii=False sends the Turkish letters as UTF-8 bytes, as Paynet does.
    body = json.dumps(document, ensure_ascii=False).encode("utf-8")
    return ScriptedResponse(status=status, body=body, headers={"Content-Type": JSON_CONTENT_TYPE})


def _bad_request(reason: str) -> ScriptedResponse:
    return paynet_error(
        400, "invalid_request_error", RESULT_BAD_REQUEST, f"Geçersiz istek: {reason}"
    )


def _check_otp_response(
    request: RecordedRequest, secret_key: str, *, scenarios: bool
) -> ScriptedResponse:
    """Return Paynet's response to a check_otp request that no scripted response overrides.

    With ``scenarios``, the OTP codes DOWN1 and SLOW1 get a server error and no response.
    """
    # Paynet takes the raw key after "Basic ", not base64 of user:password, and compares it
    # exactly, so keys containing "/" or "+" must arrive unchanged.
    if request.headers.get("authorization") != f"Basic {secret_key}":
        return paynet_error(401, "authorization_error", RESULT_UNAUTHORIZED, UNAUTHORIZED_MESSAGE)

    # NOTE: Paynet does not document its response to a Content-Type other than JSON. The sandbox
    # rejects it with 400 so that a client that forgets the header fails here first.
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return _bad_request("Content-Type application/json olmalı")

    try:
        document = request.json()
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _bad_request("gövde geçerli bir JSON değil")
    if not isinstance(document, dict):
        return _bad_request("gövde bir JSON nesnesi olmalı")

    for name in _CHECK_OTP_FIELDS:
        value = document.get(name)
        if not isinstance(value, str):
            return _bad_request(f"{name} alanı eksik ya da metin değil")
        if not value:
            return _bad_request(f"{name} alanı boş olamaz")
    if not _USER_GSM_PATTERN.fullmatch(document["user_gsm"]):
        return _bad_request("user_gsm 5 ile başlayan 10 haneli bir numara olmalı")

    otp_code = document["otp_code"]
    if scenarios and otp_code == SCENARIO_DOWN_CODE:
        return paynet_error(500, "api_error", RESULT_ERROR, SERVER_ERROR_MESSAGE)
    if scenarios and otp_code == SCENARIO_SLOW_CODE:
        return ScriptedResponse(action="close", delay_seconds=SLOW_SCENARIO_SECONDS)
    if otp_code == ACCEPTED_OTP_CODE:
        return paynet_answer(RESULT_SUCCESSFUL, SUCCESS_MESSAGE)
    return paynet_answer(RESULT_UNSUCCESSFUL, WRONG_OTP_MESSAGE)


class _SandboxHandler(BaseHTTPRequestHandler):
    """Serves the requests of one connection, recording each before responding."""

    protocol_version = "HTTP/1.1"
    # The status line and headers go out in one write and the body in another. With Nagle's
    # algorithm on, the body could wait for the client's delayed ACK, 40 ms or more on Linux.
    disable_nagle_algorithm = True
    server: _SandboxServer

    def setup(self) -> None:
        super().setup()
        self._abort_on_finish = False
        # The socket timeout ends a keep-alive connection that stays idle this long, because
        # handle_one_request closes the connection when its read times out.
        if self.server.keep_alive_timeout is not None:
            self.connection.settimeout(self.server.keep_alive_timeout)

    def finish(self) -> None:
        super().finish()
        if self._abort_on_finish:
            # Closing here, before socketserver's shutdown(SHUT_WR), sends the RST without a
            # FIN in front of it.
            self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        # http.server logs request lines, statuses and its own errors here, never bodies or headers.
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", self.address_string(), format % args)

    def handle_request(self) -> None:
        """Record the request, then respond with a scripted response or as Paynet would."""
        sandbox = self.server.sandbox
        body, body_problem = self._read_body()
        request = RecordedRequest(
            method=self.command, path=self.path, headers=self._header_dict(), body=body
        )
        sandbox._record(request)

        if body_problem is not None:
            # The end of the body is unknown, so the connection cannot carry another request.
            self.close_connection = True
            self._perform(body_problem)
            return
        if urlsplit(self.path).path != CHECK_OTP_PATH:
            self._perform(paynet_error(404, "no_data_error", RESULT_NO_DATA, NOT_FOUND_MESSAGE))
            return
        if self.command != "POST":
            # NOTE: Paynet does not document the return code that goes with 405, so
            # notimplemented (9) is a guess.
            error = paynet_error(
                405, "api_error", RESULT_NOT_IMPLEMENTED, METHOD_NOT_ALLOWED_MESSAGE
            )
            self._perform(
                ScriptedResponse(error.status, error.body, {**error.headers, "Allow": "POST"})
            )
            return

        scripted = sandbox._next_scripted_response()
        if scripted is not None:
            logger.debug("sending scripted %s for %s %s", scripted.action, self.command, self.path)
            self._perform(scripted)
            return
        self._perform(_check_otp_response(request, sandbox.secret_key, scenarios=sandbox.scenarios))

    # Every standard method is recorded and routed, so a client that sends the wrong one gets
    # Paynet's 405 object. Other methods get http.server's own 501 page and are not recorded.
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_request

    def _header_dict(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return headers

    def _read_body(self) -> tuple[bytes, ScriptedResponse | None]:
        """Read the whole request body.

        Returns the body and, when the body is invalid, too large or cut short, the response to
        send instead of the normal one.
        """
        transfer_encoding = self.headers.get("Transfer-Encoding")
        if transfer_encoding is not None:
            if transfer_encoding.strip().lower() != "chunked":
                return b"", _bad_request(f"Transfer-Encoding desteklenmiyor: {transfer_encoding}")
            return self._read_chunked_body()

        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b"", None
        length_text = length_header.strip()
        if not (length_text.isascii() and length_text.isdigit()):
            return b"", _bad_request(f"Content-Length geçersiz: {length_header}")
        length = int(length_text)
        if length > MAX_REQUEST_BODY_BYTES:
            return b"", _body_too_large()

        body = self.rfile.read(length)
        if len(body) < length:
            # The client closed its side mid-body, so no response can reach it.
            return body, ScriptedResponse(action="close")
        return body, None

    def _read_chunked_body(self) -> tuple[bytes, ScriptedResponse | None]:
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE_BYTES + 1)
            if not line.endswith(b"\n"):
                return b"".join(chunks), _truncated_or_too_long(line)
            size_field = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE_PATTERN.fullmatch(size_field):
                return b"".join(chunks), _bad_request("chunk boyutu geçersiz")
            chunk_size = int(size_field, 16)
            if chunk_size == 0:
                break
            size += chunk_size
            if size > MAX_REQUEST_BODY_BYTES:
                return b"".join(chunks), _body_too_large()
            chunk = self.rfile.read(chunk_size)
            chunks.append(chunk)
            if len(chunk) < chunk_size:
                return b"".join(chunks), ScriptedResponse(action="close")
            if self.rfile.readline(_MAX_CHUNK_LINE_BYTES + 1) not in (b"\r\n", b"\n"):
                return b"".join(chunks), _bad_request("chunk CRLF ile bitmiyor")

        # Trailer fields are read and dropped, up to the empty line that ends them.
        while True:
            line = self.rfile.readline(_MAX_CHUNK_LINE_BYTES + 1)
            if not line.endswith(b"\n"):
                return b"".join(chunks), _truncated_or_too_long(line)
            if line in (b"\r\n", b"\n"):
                return b"".join(chunks), None

    def _perform(self, response: ScriptedResponse) -> None:
        stopping = self.server.stopping
        if response.delay_seconds > 0 and stopping.wait(response.delay_seconds):
            self.close_connection = True
            return

        if response.action == "hang":
            stopping.wait()
            self.close_connection = True
        elif response.action == "close":
            self.close_connection = True
        elif response.action == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self._abort_on_finish = True
        else:
            self._send(response)

    def _send(self, response: ScriptedResponse) -> None:
        self.send_response(response.status)
        given_names = {name.lower() for name in response.headers}
        for name, value in response.headers.items():
            self.send_header(name, value)
        if not given_names & {"content-length", "transfer-encoding"}:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection and "connection" not in given_names:
            self.send_header("Connection", "close")
        if response.head_byte_interval_seconds > 0:
            self.end_headers_slowly(response.head_byte_interval_seconds)
            if self.close_connection:
                return
        else:
            self.end_headers()
        if self.command == "HEAD" or not response.body:
            return
        if response.byte_interval_seconds <= 0:
            self.wfile.write(response.body)
            return
        self._write_slowly(response.body, response.byte_interval_seconds)

    def end_headers_slowly(self, interval: float) -> None:
        """Send the status line and headers buffered so far one byte at a time."""
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        self._write_slowly(head, interval)

    def _write_slowly(self, data: bytes, interval: float) -> None:
        for index in range(len(data)):
            if self.server.stopping.wait(interval):
                self.close_connection = True
                return
            self.wfile.write(data[index : index + 1])


def _body_too_large() -> ScriptedResponse:
    return paynet_error(
        413,
        "invalid_request_error",
        RESULT_BAD_REQUEST,
        f"Geçersiz istek: gövde {MAX_REQUEST_BODY_BYTES} bayttan büyük",
    )


def _truncated_or_too_long(line: bytes) -> ScriptedResponse:
    if len(line) > _MAX_CHUNK_LINE_BYTES:
        return _bad_request("chunk satırı çok uzun")
    # The client closed its side inside the chunked body.
    return ScriptedResponse(action="close")


class _SandboxServer(ThreadingHTTPServer):
    """Threading HTTP server that tracks its connections and threads so that stop() can end them."""

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        sandbox: PaynetSandbox,
        address: tuple[str, int],
        ssl_context: ssl.SSLContext | None,
        keep_alive_timeout: float | None,
    ) -> None:
        self.sandbox = sandbox
        self.ssl_context = ssl_context
        self.keep_alive_timeout = keep_alive_timeout
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        # Each accepted socket mapped to the socket to shut down on stop: itself, or its TLS
        # wrapper once the handshake starts, because wrapping detaches the accepted socket.
        self._connections: dict[socket.socket, socket.socket] = {}
        self._connection_threads: set[threading.Thread] = set()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _SandboxHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can be slow
        # and that would send traffic beyond loopback.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, client_address = super().get_request()
        with self._lock:
            self._connections[connection] = connection
        self.sandbox._count_connection()
        return connection, client_address

    def process_request(self, request: _Request, client_address: Any) -> None:
        # ThreadingMixIn does not keep daemon threads, so this server starts and tracks its own.
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"paynet-sandbox {client_address}",
            daemon=True,
        )
        with self._lock:
            self._connection_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: _Request, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                if isinstance(request, socket.socket):
                    self._connections.pop(request, None)
                self._connection_threads.discard(threading.current_thread())

    def finish_request(self, request: _Request, client_address: Any) -> None:
        if self.ssl_context is None or not isinstance(request, socket.socket):
            super().finish_request(request, client_address)
            return

        # The handshake runs here, in the connection's thread, and not in accept(), so that one
        # slow client cannot hold up the others.
        with self._lock:
            if self.stopping.is_set():
                return
            tls_socket = self.ssl_context.wrap_socket(
                request, server_side=True, do_handshake_on_connect=False
            )
            self._connections[request] = tls_socket
        with tls_socket:
            tls_socket.settimeout(TLS_HANDSHAKE_TIMEOUT_SECONDS)
            try:
                tls_socket.do_handshake()
            except OSError as error:
                logger.debug("TLS handshake with %s failed: %s", client_address, error)
                return
            tls_socket.settimeout(None)
            super().finish_request(tls_socket, client_address)

    def handle_error(self, request: _Request, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            # Raised when a client drops or resets a connection and when stop() shuts it down.
            logger.debug("connection from %s ended: %r", client_address, error)
        else:
            logger.error("sandbox failed while serving %s", client_address, exc_info=error)

    def shut_down_connections(self) -> None:
        """Shut down every open connection so that threads blocked on it return."""
        with self._lock:
            sockets = list(self._connections.values())
        for connection in sockets:
            # OSError means that the connection's thread or the client closed it already.
            with contextlib.suppress(OSError):
                # socket.socket.shutdown on purpose: SSLSocket.shutdown would also drop the TLS
                # state that the connection's own thread may be using.
                socket.socket.shutdown(connection, socket.SHUT_RDWR)

    def join_threads(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._connection_threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            logger.warning(
                "%d sandbox connection threads are still running after stop(): %s",
                len(alive),
                alive,
            )


class PaynetSandbox:
    """A Paynet stand-in served from a background thread.

    Requests to ``POST /v1/card/check_otp`` take the next queued ScriptedResponse, if any,
    before the key is checked. Otherwise the sandbox responds as Paynet does: 401 for a wrong or
    missing key, 400 for an invalid body, code 0 for the OTP code ``ART2`` and code 1 for any
    other. Any other path gets 404, and another method on the check_otp path gets 405. Every
    request with a standard HTTP method is recorded, whatever its path.

    ``keep_alive_timeout`` is the number of seconds after which the server closes an idle
    keep-alive connection. It also limits how long one read of a request may wait. ``None``
    keeps connections open until the client closes them or the sandbox stops.

    ``scenarios`` turns on scenario mode: the OTP code ``DOWN1`` gets HTTP 500 with Paynet's
    error object (return code 2), and ``SLOW1`` gets no response for 30 seconds, after which the
    connection is closed. Both apply only to requests that pass the key and body checks.
    """

    def __init__(
        self,
        secret_key: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        keep_alive_timeout: float | None = None,
        scenarios: bool = False,
    ) -> None:
        if keep_alive_timeout is not None and not keep_alive_timeout > 0:
            raise ValueError(f"keep_alive_timeout must be > 0 seconds, not {keep_alive_timeout}")
        # Read by every check_otp request, so tests can assign it to simulate key rotation.
        self.secret_key = secret_key
        self.scenarios = scenarios
        self._host = host
        self._port = port
        self._ssl_context = ssl_context
        self._keep_alive_timeout = keep_alive_timeout
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._scripted: deque[ScriptedResponse] = deque()
        self._connection_count = 0
        self._server: _SandboxServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_address: tuple[str, int] | None = None

    @property
    def base_url(self) -> str:
        """URL of the sandbox root, such as ``http://127.0.0.1:54321``, kept after stop()."""
        if self._bound_address is None:
            raise RuntimeError("PaynetSandbox has no address yet: call start() first")
        host, port = self._bound_address
        if ":" in host:
            host = f"[{host}]"
        scheme = "http" if self._ssl_context is None else "https"
        return f"{scheme}://{host}:{port}"

    def start(self) -> PaynetSandbox:
        """Bind the port and serve from a daemon thread. Returns the sandbox itself."""
        if self._server is not None:
            raise RuntimeError("PaynetSandbox is already running: call stop() before start()")
        server = _SandboxServer(
            self, (self._host, self._port), self._ssl_context, self._keep_alive_timeout
        )
        host, port = server.server_address[:2]
        self._bound_address = (str(host), int(port))
        # serve_forever checks for shutdown once per poll interval, so stop() waits at most 50 ms.
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"paynet-sandbox {self.base_url}",
            daemon=True,
        )
        self._server = server
        self._thread = thread
        thread.start()
        logger.debug("Paynet sandbox listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and end every connection, including hanging and idle ones.

        Waits at most about 5 s for connection threads and logs a warning for any still
        running. Calling stop() on a stopped sandbox does nothing.
        """
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.shut_down_connections()
        server.join_threads(_THREAD_JOIN_TIMEOUT_SECONDS)
        thread.join()
        self._server = None
        self._thread = None
        logger.debug("Paynet sandbox on %s stopped", self.base_url)

    def __enter__(self) -> PaynetSandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def enqueue(self, *responses: ScriptedResponse) -> None:
        """Queue responses for the next check_otp POST requests, first in, first out.

        Each one replaces the normal response, key check included, for one request after the
        request is recorded. Requests to other paths or with other methods leave the queue alone.
        """
        for response in responses:
            if not isinstance(response, ScriptedResponse):
                raise TypeError(f"enqueue() takes ScriptedResponse objects, not {response!r}")
        with self._lock:
            self._scripted.extend(responses)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Copy of every request received since start or the last reset(), oldest first."""
        with self._lock:
            return list(self._requests)

    @property
    def connection_count(self) -> int:
        """Number of TCP connections accepted since start or the last reset()."""
        with self._lock:
            return self._connection_count

    def reset(self) -> None:
        """Clear the recorded requests, the scripted response queue and the connection count."""
        with self._lock:
            self._requests.clear()
            self._scripted.clear()
            self._connection_count = 0

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _count_connection(self) -> None:
        with self._lock:
            self._connection_count += 1

    def _next_scripted_response(self) -> ScriptedResponse | None:
        with self._lock:
            return self._scripted.popleft() if self._scripted else None


def _port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, not {port}")
    return port


def _positive_seconds(text: str) -> float:
    seconds = float(text)
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"seconds must be a positive number, not {text}")
    return seconds


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.paynet_sandbox",
        description=(
            "Serve a Paynet stand-in for POST /v1/card/check_otp until Ctrl-C or SIGTERM. "
            "The base URL is printed on stdout once the server accepts connections."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="Set the address to listen on (default: %(default)s)."
    )
    parser.add_argument(
        "--port",
        type=_port_number,
        default=8081,
        help="Set the TCP port, or 0 for any free port (default: %(default)s).",
    )
    parser.add_argument(
        "--secret-key",
        required=True,
        help="Set the secret key that requests must send as 'Authorization: Basic KEY'.",
    )
    parser.add_argument(
        "--keep-alive-timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        default=None,
        help="Close keep-alive connections idle for this many seconds (default: never).",
    )
    parser.add_argument(
        "--certfile", help="Serve HTTPS with this PEM certificate chain (default: plain HTTP)."
    )
    parser.add_argument(
        "--keyfile", help="Set the PEM private key for --certfile, if the chain file lacks it."
    )
    parser.add_argument(
        "--scenarios",
        action="store_true",
        help=(
            f"Answer the OTP code {SCENARIO_DOWN_CODE} with HTTP 500 and send no response to "
            f"{SCENARIO_SLOW_CODE} (default: both are wrong codes)."
        ),
    )
    parser.add_argument(
        "--verbose", action="store_true", help="Log every request line and status to stderr."
    )
    arguments = parser.parse_args(argv)
    if arguments.keyfile is not None and arguments.certfile is None:
        parser.error("--keyfile requires --certfile")
    return arguments


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sandbox from the command line until Ctrl-C or SIGTERM. Returns the exit status."""
    arguments = _parse_arguments(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    ssl_context = None
    if arguments.certfile is not None:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ssl_context.load_cert_chain(arguments.certfile, arguments.keyfile)
        except OSError as error:
            # ssl.SSLError is an OSError too, so this covers unreadable and invalid PEM files.
            logger.error(  # noqa: TRY400
                "Cannot load the certificate chain %s: %s", arguments.certfile, error
            )
            return 1

    # SIGTERM ends the wait below the same way Ctrl-C does, so both stop the server cleanly.
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    sandbox = PaynetSandbox(
        arguments.secret_key,
        host=arguments.host,
        port=arguments.port,
        ssl_context=ssl_context,
        keep_alive_timeout=arguments.keep_alive_timeout,
        scenarios=arguments.scenarios,
    )
    try:
        sandbox.start()
    except OSError as error:
        # The message names the error, so a traceback would add nothing for a busy port.
        logger.error(  # noqa: TRY400
            "Cannot listen on %s port %d: %s", arguments.host, arguments.port, error
        )
        return 1
    try:
        print(sandbox.base_url, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        logger.info("Stopping the Paynet sandbox on %s", sandbox.base_url)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
