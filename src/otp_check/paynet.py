"""Paynet API client for ``POST /v1/card/check_otp``, built on one urllib3 connection pool."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from otp_check.errors import (
    PaynetAuthenticationError,
    PaynetConnectionDroppedError,
    PaynetError,
    PaynetHTTPError,
    PaynetInvalidResponseError,
    PaynetTimeoutError,
    PaynetTLSError,
    PaynetUnavailableError,
)
from otp_check.observability import logger, tracer

CHECK_OTP_PATH = "/v1/card/check_otp"

# A check_otp response is a few dozen bytes. Reading stops past this size so that a broken or
# hostile upstream cannot make the function buffer megabytes.
MAX_RESPONSE_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 8 * 1024

USER_AGENT = "paynet-otp-check/0.1"

# The "type" values of Paynet's error object.
PAYNET_ERROR_TYPES = frozenset(
    {"api_error", "invalid_request_error", "authorization_error", "no_data_error"}
)


@dataclass(frozen=True)
class PaynetResult:
    """Paynet's response to an OTP check: its return code and its message, unchanged."""

    code: int
    message: str


class PaynetClient(Protocol):
    """The Paynet calls the OTP check needs."""

    def check_otp(
        self, payload: Mapping[str, str], *, secret_key: str, deadline: float
    ) -> PaynetResult: ...

    def close(self) -> None: ...


class Urllib3PaynetClient:
    """Paynet client that reuses one keep-alive connection across warm invocations.

    A POST that may have reached Paynet is never sent again: the pool has retries switched off,
    and only a failure to connect, where no byte of the request left the process, is tried a
    second time.
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        ca_certs: str | None = None,
    ) -> None:
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        pool_options: dict[str, Any] = {"maxsize": 1, "block": False, "retries": False}
        url = urllib3.util.parse_url(base_url)
        if url.scheme == "https":
            pool_options["cert_reqs"] = "CERT_REQUIRED"
            if ca_certs is not None:
                pool_options["ca_certs"] = ca_certs
        self._pool = _connection_pool(base_url, **pool_options)
        self._path_prefix = url.path or ""

    @property
    def pool(self) -> urllib3.HTTPConnectionPool:
        return self._pool

    def close(self) -> None:
        """Close the pooled connection; the next call opens a new one."""
        self._pool.close()

    def check_otp(
        self, payload: Mapping[str, str], *, secret_key: str, deadline: float
    ) -> PaynetResult:
        """Send one OTP check and return Paynet's response.

        ``deadline`` is a ``time.monotonic()`` value. Nothing of the call, including reading the
        response, runs past it. Raises a PaynetError subclass for every failure.
        """
        body = json.dumps(dict(payload), separators=(",", ":")).encode()
        headers = {
            "Authorization": f"Basic {secret_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "User-Agent": USER_AGENT,
        }
        # A subsegment of its own, rather than capture_method, so that neither the response nor a
        # logged stack trace of every Paynet failure ends up in the trace or the log.
        with (
            tracer.provider.in_subsegment("## Paynet check_otp") as subsegment,
            _DeadlineWatchdog(self._pool, deadline) as watchdog,
        ):
            try:
                response = self._send(body, headers, deadline)
                subsegment.put_annotation("paynet_http_status", str(response.status))
                try:
                    raw = _read_bounded(response, deadline)
                finally:
                    response.release_conn()
            except PaynetError as exc:
                if watchdog.fired:
                    raise PaynetTimeoutError("Paynet did not respond in time") from exc
                raise
            if watchdog.fired:
                raise PaynetTimeoutError("Paynet did not respond in time")
            return _parse_result(response.status, raw)

    def _send(
        self, body: bytes, headers: Mapping[str, str], deadline: float
    ) -> urllib3.BaseHTTPResponse:
        for attempt in (1, 2):
            timeout = self._timeout_until(deadline)
            try:
                return self._pool.urlopen(
                    "POST",
                    self._path_prefix + CHECK_OTP_PATH,
                    body=body,
                    headers=headers,
                    timeout=timeout,
                    retries=False,
                    redirect=False,
                    preload_content=False,
                    # The request sets Accept-Encoding: identity. A compressed body is kept as
                    # it is and fails to parse, so it is never decompressed.
                    decode_content=False,
                )
            except (NewConnectionError, ConnectTimeoutError) as exc:
                # Nothing was sent, so one more connection attempt cannot check the OTP twice.
                if attempt == 1 and deadline - time.monotonic() > self._connect_timeout:
                    logger.warning(
                        "Paynet connection failed, retrying once",
                        extra={"error_kind": type(exc).__name__},
                    )
                    continue
                if isinstance(exc, NewConnectionError):
                    raise PaynetUnavailableError("Cannot connect to Paynet") from exc
                raise PaynetTimeoutError(
                    "Connecting to Paynet timed out", request_sent=False
                ) from exc
            except ReadTimeoutError as exc:
                raise PaynetTimeoutError("Paynet did not respond in time") from exc
            except SSLError as exc:
                raise PaynetTLSError("TLS handshake with Paynet failed") from exc
            except ProtocolError as exc:
                raise PaynetConnectionDroppedError(
                    "Connection to Paynet dropped after the request was sent"
                ) from exc
            except HTTPError as exc:
                raise PaynetError(f"Paynet request failed: {type(exc).__name__}") from exc
        raise AssertionError("unreachable: the loop returns or raises")

    def _timeout_until(self, deadline: float) -> urllib3.Timeout:
        left = deadline - time.monotonic()
        if left <= 0:
            raise PaynetTimeoutError("No time left for the Paynet call", request_sent=False)
        return urllib3.Timeout(
            total=left,
            connect=min(self._connect_timeout, left),
            read=min(self._read_timeout, left),
        )


class _ConnectionTracking:
    """Pool mixin that remembers the connection handed out last, for _DeadlineWatchdog.

    With one connection per pool and one call at a time, that is the connection in use.
    """

    in_use: HTTPConnection | None = None

    def _get_conn(self, timeout: float | None = None) -> HTTPConnection:
        conn: HTTPConnection = super()._get_conn(timeout)  # type: ignore[misc]
        self.in_use = conn
        return conn


class _TrackingHTTPConnectionPool(_ConnectionTracking, HTTPConnectionPool):
    pass


class _TrackingHTTPSConnectionPool(_ConnectionTracking, HTTPSConnectionPool):
    pass


_TrackingPool = _TrackingHTTPConnectionPool | _TrackingHTTPSConnectionPool


def _connection_pool(base_url: str, **options: Any) -> _TrackingPool:
    url = urllib3.util.parse_url(base_url)
    host = url.host or ""  # The settings accept only URLs with a host.
    if url.scheme == "https":
        return _TrackingHTTPSConnectionPool(host, port=url.port or 443, **options)
    return _TrackingHTTPConnectionPool(host, port=url.port or 80, **options)


class _DeadlineWatchdog:
    """Shuts the Paynet socket down when the deadline passes.

    Socket timeouts bound each read, not the whole response, so a server that sends its status
    line and headers a byte at a time could keep a call going long past the deadline. Shutting
    the socket down wakes the blocked read at once.
    """

    def __init__(self, pool: _ConnectionTracking, deadline: float) -> None:
        self._pool = pool
        self._deadline = deadline
        self._lock = threading.Lock()
        self._finished = False
        self.fired = False
        self._timer: threading.Timer | None = None

    def __enter__(self) -> _DeadlineWatchdog:
        left = max(self._deadline - time.monotonic(), 0.0)
        self._timer = threading.Timer(left, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._finished = True
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.fired = True
            sock = getattr(self._pool.in_use, "sock", None)
            if isinstance(sock, socket.socket):
                # socket.socket.shutdown rather than the SSL socket's own method, which would
                # also tear down the TLS state that the reading thread is still using.
                # OSError: the socket is closed already, so the read has ended by itself.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _read_bounded(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
    """Read at most MAX_RESPONSE_BYTES + 1 bytes of the body, giving up at ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    try:
        while size <= MAX_RESPONSE_BYTES:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PaynetTimeoutError("Paynet did not send its response in time")
            # The pool's read timeout applies to each socket read, so a server that sends a
            # byte at a time could outlast it. Tightening the timeout before every read keeps
            # the whole body inside the deadline.
            sock = getattr(response.connection, "sock", None)
            if isinstance(sock, socket.socket):
                sock.settimeout(left)
            chunk = response.read1(_READ_CHUNK_BYTES)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (ReadTimeoutError, TimeoutError) as exc:
        response.close()
        raise PaynetTimeoutError("Paynet did not send its response in time") from exc
    except (ProtocolError, OSError) as exc:
        response.close()
        raise PaynetConnectionDroppedError("Connection to Paynet dropped while reading") from exc
    except HTTPError as exc:
        response.close()
        raise PaynetInvalidResponseError(
            f"Paynet response could not be read: {type(exc).__name__}"
        ) from exc
    except PaynetError:
        response.close()
        raise

    if size > MAX_RESPONSE_BYTES:
        # The rest of the body stays unread, so the connection cannot be reused.
        response.close()
        raise PaynetInvalidResponseError(
            f"Paynet response is larger than {MAX_RESPONSE_BYTES} bytes"
        )
    return b"".join(chunks)


def _parse_result(status: int, raw: bytes) -> PaynetResult:
    if status != 200:
        raise _http_error(status, raw)

    document = _decode_json(raw)
    if not isinstance(document, dict):
        raise PaynetInvalidResponseError("Paynet response is not a JSON object")
    if "code" not in document:
        raise PaynetInvalidResponseError('Paynet response has no "code"')

    code = _parse_code(document["code"])
    if code is None:
        raise PaynetInvalidResponseError('Paynet response has a "code" that is not an integer')
    message = document.get("message", "")
    if not isinstance(message, str):
        raise PaynetInvalidResponseError('Paynet response has a "message" that is not a string')
    # JSON can carry unpaired surrogates ("\\ud800"), which no UTF-8 response can hold. They
    # become "?" so that the message still reaches the client.
    message = message.encode("utf-8", "replace").decode("utf-8")
    return PaynetResult(code=code, message=message)


def _parse_code(value: object) -> int | None:
    # Paynet's documentation types "code" as a string while its examples show numbers,
    # so both 0 and "0" are read. Booleans are JSON true/false, never a code.
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 6:
        return int(value)
    return None


def _decode_json(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise PaynetInvalidResponseError("Paynet response is not valid UTF-8") from None
    except (ValueError, RecursionError):
        raise PaynetInvalidResponseError("Paynet response is not valid JSON") from None


def _http_error(status: int, raw: bytes) -> PaynetHTTPError:
    """Build the error for a non-200 response, keeping the fields of Paynet's error object."""
    error_type: str | None = None
    result_code: int | None = None
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        if isinstance(document.get("type"), str):
            # Only the documented types are kept: the value goes into logs, and an upstream
            # that is not Paynet could put anything there.
            error_type = document["type"] if document["type"] in PAYNET_ERROR_TYPES else "other"
        result_code = _parse_code(document.get("result_code"))

    error_class = PaynetAuthenticationError if status == 401 else PaynetHTTPError
    return error_class(
        f"Paynet responded with HTTP {status}",
        status=status,
        error_type=error_type,
        result_code=result_code,
    )
