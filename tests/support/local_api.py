"""Serve the function over HTTP on loopback, the way API Gateway's REST API calls it.

Usage: ``python -m tests.support.local_api [--port PORT] [--no-scenarios]``, which is what
``make serve`` runs.

Each request to a route of the API becomes a REST API proxy event (payload format 1.0) for
the handler, and the handler's proxy response becomes the HTTP response. Like API Gateway,
the server sends any other path or method a 403 without calling the function. Behind the
function run the Paynet sandbox, in scenario mode unless ``--no-scenarios`` is given, and
moto's server for Secrets Manager and DynamoDB, with a made-up test key as the secret and an
empty attempts table. Their data lives until the server stops, so failed checks add up towards
the attempt limits as they would in AWS. Nothing leaves the machine.

No maintained package adapts HTTP requests into proxy events for a handler in this process.
Mangum, apig-wsgi and serverless-wsgi go the other way, from events to ASGI or WSGI requests.
lambda-gateway (PyPI) serves only GET, HEAD and POST, so no CORS preflight, and builds neither
``multiValueHeaders`` nor ``requestContext``. ``sam local start-api`` needs Docker. So this
module uses http.server, which keeps every request header as it was sent, repeats included,
where a WSGI server joins repeated headers into one value.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.support.aws import AWS_TEST_ENVIRONMENT, REPOSITORY_ROOT
from tests.support.lambda_context import FakeLambdaContext

logger = logging.getLogger("local_api")

CHECK_OTP_ROUTE = "/v1/card/check_otp"
# The methods and paths that template.yaml routes to the function.
ROUTES = frozenset({("POST", CHECK_OTP_ROUTE), ("OPTIONS", CHECK_OTP_ROUTE)})
STAGE = "local"
DEFAULT_PORT = 3000
# The function's Timeout in template.yaml, which the Lambda context counts down from.
FUNCTION_TIMEOUT_MS = 15_000
# A short Paynet timeout, so that the SLOW1 scenario ends in a 504 after 2 seconds and not 10.
DEFAULT_PAYNET_TIMEOUT_SECONDS = "2"
# API Gateway's own maximum payload size.
MAX_BODY_BYTES = 10 * 1024 * 1024


Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class HttpResponse:
    """A response to send: status, headers in order (a name may repeat) and body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


class MalformedProxyResponseError(ValueError):
    """The handler returned something that API Gateway cannot turn into an HTTP response."""


def build_event(
    *,
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """Build the REST API proxy event (payload format 1.0) for one HTTP request.

    ``headers`` are the request's header lines as sent. A body that is not UTF-8 text is passed
    base64-encoded, with ``isBase64Encoded`` true, so that the function gets its bytes intact.
    """
    url = urlsplit(target)
    path = unquote(url.path)
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    # API Gateway groups header lines by name whatever their letter case, under the spelling
    # that came first.
    spellings: dict[str, str] = {}
    for name, value in headers:
        key = spellings.setdefault(name.lower(), name)
        single_headers[key] = value
        multi_headers.setdefault(key, []).append(value)

    query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = value
        multi_query.setdefault(name, []).append(value)

    try:
        text: str | None = body.decode("utf-8") if body else None
        base64_encoded = False
    except UnicodeDecodeError:
        text = base64.b64encode(body).decode("ascii")
        base64_encoded = True

    user_agent = next((v for n, v in headers if n.lower() == "user-agent"), None)
    host = next((v for n, v in headers if n.lower() == "host"), "127.0.0.1")
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0],
            "extendedRequestId": request_id,
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": user_agent,
                "userArn": None,
            },
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": "local",
            "resourcePath": path,
            "stage": STAGE,
        },
        "body": text,
        "isBase64Encoded": base64_encoded,
    }


def http_response(result: object) -> HttpResponse:
    """Turn a Lambda proxy response into the HTTP response that API Gateway would send.

    Both header maps are sent. Where a name is in both, only the ``multiValueHeaders`` values
    are sent, as API Gateway does. Raises MalformedProxyResponseError for anything that is not
    a valid proxy response.
    """
    if not isinstance(result, Mapping):
        raise MalformedProxyResponseError(f"the response is a {type(result).__name__}, not a map")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedProxyResponseError(f"statusCode {status!r} is not an HTTP status")

    multi_value = result.get("multiValueHeaders") or {}
    single_value = result.get("headers") or {}
    if not isinstance(multi_value, Mapping) or not isinstance(single_value, Mapping):
        raise MalformedProxyResponseError("headers and multiValueHeaders must be maps")
    headers: list[tuple[str, str]] = []
    for name, values in multi_value.items():
        if not isinstance(values, list):
            raise MalformedProxyResponseError(f"multiValueHeaders[{name!r}] is not a list")
        headers.extend((str(name), str(value)) for value in values)
    multi_value_names = {str(name).lower() for name in multi_value}
    headers.extend(
        (str(name), str(value))
        for name, value in single_value.items()
        if str(name).lower() not in multi_value_names
    )

    body = result.get("body")
    if body is None:
        body = ""
    if not isinstance(body, str):
        raise MalformedProxyResponseError(f"body is a {type(body).__name__}, not a string")
    if result.get("isBase64Encoded"):
        try:
            return HttpResponse(status, headers, base64.b64decode(body, validate=True))
        except binascii.Error as error:
            raise MalformedProxyResponseError(f"body is not valid base64: {error}") from None
    return HttpResponse(status, headers, body.encode("utf-8"))


def gateway_response(status: int, message: str, **headers: str) -> HttpResponse:
    """Build one of API Gateway's own responses, which have a JSON ``message``."""
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("Content-Type", "application/json"), *headers.items()], body)


class LocalApi:
    """Invokes the handler for each routed request, one at a time like one Lambda instance.

    The handler keeps per-invocation state in module globals (the resolver's current event,
    the logger's keys), so two invocations must not overlap in one process.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._invocation_lock = threading.Lock()

    def respond(self, event: dict[str, Any]) -> HttpResponse:
        """Return the HTTP response to the request in ``event``."""
        if (event["httpMethod"], event["path"]) not in ROUTES:
            return gateway_response(
                403,
                "Missing Authentication Token",
                **{"x-amzn-ErrorType": "MissingAuthenticationTokenException"},
            )
        context = FakeLambdaContext(timeout_ms=FUNCTION_TIMEOUT_MS)
        with self._invocation_lock:
            try:
                result = self._handler(event, context)
            except Exception:
                # API Gateway responds to a failed invocation with this 502.
                logger.exception("The function raised an exception")
                return gateway_response(502, "Internal server error")
        try:
            return http_response(result)
        except MalformedProxyResponseError as error:
            logger.error("Malformed Lambda proxy response: %s", error)  # noqa: TRY400
            return gateway_response(502, "Internal server error")


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalApiServer

    def handle_request(self) -> None:
        started = time.monotonic()
        request_id = str(uuid.uuid4())
        body, problem = self._read_body()
        if problem is None:
            event = build_event(
                method=self.command,
                target=self.path,
                headers=list(self.headers.items()),
                body=body,
                source_ip=self.client_address[0],
                request_id=request_id,
                now=datetime.now(UTC),
            )
            response = self.server.api.respond(event)
        else:
            response = problem
            self.close_connection = True
        self._send(response)
        latency_ms = (time.monotonic() - started) * 1000
        logger.info(
            "%s %s %d %.0f ms (request id %s)",
            self.command,
            urlsplit(self.path).path,
            response.status,
            latency_ms,
            request_id,
        )

    def __getattr__(self, name: str) -> Any:
        # http.server looks up a do_<METHOD> attribute for each request and responds with 501
        # where there is none. API Gateway handles every method, so every method gets
        # handle_request.
        if name.startswith("do_"):
            return self.handle_request
        raise AttributeError(name)

    def _read_body(self) -> tuple[bytes, HttpResponse | None]:
        if self.headers.get("Transfer-Encoding") is not None:
            # NOTE: API Gateway accepts chunked request bodies. Apps and curl send a
            # Content-Length for bodies this small, so the local API does not read them.
            return b"", gateway_response(411, "Length Required")
        length_text = (self.headers.get("Content-Length") or "0").strip()
        if not (length_text.isascii() and length_text.isdigit()):
            return b"", gateway_response(400, "Invalid Content-Length")
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            return b"", gateway_response(413, "Request Too Long")
        return self.rfile.read(length), None

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        sent_length = False
        for name, value in response.headers:
            if name.lower() == "content-length":
                sent_length = True
            self.send_header(name, value)
        if not sent_length:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # handle_request logs each request with its latency instead.
        pass

    def log_message(self, format: str, *args: Any) -> None:
        # http.server logs its own errors here, such as a malformed request line.
        logger.info("%s %s", self.address_string(), format % args)


class LocalApiServer(ThreadingHTTPServer):
    """HTTP server that hands each request to ``api``, each in a thread of its own."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: LocalApi) -> None:
        self.api = api
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can be slow
        # and that would send traffic beyond loopback.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


def _port_number(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be from 0 to 65535, not {port}")
    return port


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the function on 127.0.0.1 until Ctrl-C or SIGTERM. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.local_api",
        description=(
            "Serve the OTP check function over HTTP on 127.0.0.1 until Ctrl-C. The base URL is "
            "printed on stdout once the server accepts connections."
        ),
    )
    parser.add_argument(
        "--port",
        type=_port_number,
        default=DEFAULT_PORT,
        help="Set the TCP port, or 0 for any free port (default: %(default)s).",
    )
    parser.add_argument(
        "--scenarios",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Let the OTP codes DOWN1 and SLOW1 act out Paynet failures (default: on).",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    # A process started from a background job of a non-interactive shell inherits SIGINT as
    # ignored, and Python then leaves it ignored. Ctrl-C, and the tests' SIGINT, must stop it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    # Imported here so that test processes that import this module for its helpers do not load
    # the function.
    from otp_check.handler import lambda_handler

    try:
        server = LocalApiServer(("127.0.0.1", arguments.port), LocalApi(lambda_handler))
    except OSError as error:
        # The message names the error, so a traceback would add nothing for a busy port.
        logger.error("Cannot listen on 127.0.0.1 port %d: %s", arguments.port, error)  # noqa: TRY400
        return 1
    try:
        _serve(server, scenarios=arguments.scenarios)
    except KeyboardInterrupt:
        logger.info("Stopped the local API")
    finally:
        server.server_close()
    return 0


def _serve(server: LocalApiServer, *, scenarios: bool) -> None:
    """Start the servers behind the function, then serve until Ctrl-C or SIGTERM."""
    from otp_check.dependencies import reset_dependencies
    from tests.support.local_run import local_backends

    base_url = f"http://127.0.0.1:{server.server_port}"
    with local_backends(scenarios=scenarios):
        os.environ.setdefault("PAYNET_TIMEOUT_SECONDS", DEFAULT_PAYNET_TIMEOUT_SECONDS)
        # The metrics would print a long embedded-metric-format line per request between the
        # request and log lines. POWERTOOLS_METRICS_DISABLED=false brings them back.
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

        try:
            print(base_url, flush=True)
            logger.info(
                "Serving POST and OPTIONS %s%s; Ctrl-C stops the server. Paynet scenarios are %s.",
                base_url,
                CHECK_OTP_ROUTE,
                "on" if scenarios else "off",
            )
            server.serve_forever(poll_interval=0.2)
        finally:
            # A second Ctrl-C would cut short the shutdown of the sandbox and of the local AWS
            # server, and leave the latter running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            logger.info("Stopping the local API on %s", base_url)
            reset_dependencies()


@dataclass
class LocalApiProcess:
    """A local API server running in a child process, with its output collected."""

    base_url: str
    process: subprocess.Popen[str]
    stdout_lines: list[str]
    stderr_lines: list[str]

    def wait_for_line(self, lines: list[str], pattern: str, timeout: float = 10) -> re.Match[str]:
        """Wait until one of ``lines`` matches ``pattern``, as the server writes its output.

        ``lines`` is ``stdout_lines`` or ``stderr_lines``. Raises AssertionError after
        ``timeout`` seconds without a match.
        """
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in list(lines):
                if match := compiled.search(line):
                    return match
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no output line matches {pattern!r}")
            time.sleep(0.05)

    def stop(self, timeout: float = 20) -> int:
        """Send SIGINT, as Ctrl-C does, and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise


@contextmanager
def local_api_process(*arguments: str, **environ: str) -> Iterator[LocalApiProcess]:
    """Run ``python -m tests.support.local_api --port 0 ARGUMENTS`` until the block ends.

    ``environ`` is added to this process's environment, after the fake AWS credentials.
    """
    command = [sys.executable, "-m", "tests.support.local_api", "--port", "0", *arguments]
    environment = {
        **os.environ,
        **AWS_TEST_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY_ROOT / "src"), str(REPOSITORY_ROOT)]),
        **environ,
    }
    process = subprocess.Popen(  # noqa: S603 - this interpreter, with the project's own module
        command,
        cwd=REPOSITORY_ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout_lines: list[str] = []
    stderr_lines: list[str] = []
    assert process.stdout is not None
    assert process.stderr is not None
    # The server's output is read all along, because a full pipe would block its writes.
    readers = [threading.Thread(target=_collect, args=(process.stderr, stderr_lines), daemon=True)]
    readers[0].start()
    try:
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http://127.0.0.1:"):
            process.wait(timeout=20)
            raise RuntimeError(
                f"the local API did not start: {base_url!r}\n{''.join(stderr_lines)}"
            )
        readers.append(
            threading.Thread(target=_collect, args=(process.stdout, stdout_lines), daemon=True)
        )
        readers[1].start()
        running = LocalApiProcess(base_url, process, stdout_lines, stderr_lines)
        yield running
    finally:
        if process.poll() is None:
            LocalApiProcess("", process, stdout_lines, stderr_lines).stop()
        for reader in readers:
            reader.join(timeout=10)
        process.stdout.close()
        process.stderr.close()


def _collect(stream: Any, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


if __name__ == "__main__":
    sys.exit(main())
