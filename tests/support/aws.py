"""Local Secrets Manager and DynamoDB: moto's server on loopback, in a process of its own,
reached the way boto3 reaches AWS.

The server counts the API calls it receives, by operation, so that tests can show how often
the function fetches its secret, and it can fail chosen operations with an AWS error. Tests
control it through ``/_test/...`` routes. Running it in its own process keeps moto's own time
and memory out of what the tests measure of the function.

Run ``python -m tests.support.aws --port PORT`` to serve it by hand.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
import urllib3

REGION = "eu-central-1"
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
_CONTROL_PREFIX = "/_test/"

# Fake credentials keep botocore from looking for real ones, which would include asking the
# instance metadata endpoint.
AWS_TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


@dataclass(frozen=True)
class AwsErrorReply:
    """An AWS JSON-protocol error that replaces the response to one operation."""

    code: str
    status: int = 400
    message: str = "Injected by the test"


@dataclass(frozen=True)
class AwsDelay:
    """A pause before serving requests of one operation whose body contains ``body_contains``."""

    operation: str
    seconds: float
    body_contains: str = ""

    def __post_init__(self) -> None:
        # Every pause ends by itself, so a pause that a test leaves set cannot hang the suite.
        if not 0 < self.seconds <= 10:
            raise ValueError(f"seconds must be more than 0 and at most 10, not {self.seconds}")


class CountingAwsApp:
    """WSGI middleware around moto that counts operations, injects errors and delays, and
    serves the control routes."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._serving = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._errors: dict[str, AwsErrorReply] = {}
        self._delays: dict[str, AwsDelay] = {}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(_CONTROL_PREFIX):
            return self._control(path[len(_CONTROL_PREFIX) :], environ, start_response)

        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        with self._lock:
            if operation:
                self._calls[operation] += 1
            reply = self._errors.get(operation)
            delay = self._delays.get(operation)
        if delay is not None:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            if delay.body_contains.encode() in body:
                time.sleep(delay.seconds)
        if reply is None:
            # DynamoDB applies each write to an item atomically, and moto does not: two
            # conditional updates that arrive together can both pass their condition. Serving one
            # request at a time restores DynamoDB's guarantee. A read-then-write in the function
            # would still race, because that takes two requests.
            with self._serving:
                return list(self._app(environ, start_response))
        body = {"__type": reply.code, "message": reply.message}
        return _json(start_response, f"{reply.status} Injected", body, "application/x-amz-json-1.1")

    def _control(
        self, action: str, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"null")
        with self._lock:
            if action == "calls":
                return _json(start_response, "200 OK", dict(self._calls))
            if action == "reset":
                self._calls.clear()
                self._errors.clear()
                self._delays.clear()
            elif action == "fail":
                if request["reply"] is None:
                    self._errors.pop(request["operation"], None)
                else:
                    self._errors[request["operation"]] = AwsErrorReply(**request["reply"])
            elif action == "delay":
                delay = AwsDelay(**request)
                self._delays[delay.operation] = delay
            else:
                return _json(start_response, "404 Not Found", {"error": action})
        return _json(start_response, "200 OK", {})


def _json(
    start_response: StartResponse,
    status: str,
    document: object,
    content_type: str = "application/json",
) -> list[bytes]:
    body = json.dumps(document).encode()
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class LocalAws:
    """Test-side handle on the local AWS server: call counts and injected errors."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self._http = urllib3.PoolManager(retries=False, timeout=5)

    @property
    def calls(self) -> Counter[str]:
        """API calls received since the last reset, by operation name."""
        return Counter(self._control("calls"))

    def fail(self, operation: str, reply: AwsErrorReply | None) -> None:
        """Answer ``operation`` (for example "GetSecretValue") with ``reply`` until cleared."""
        self._control("fail", {"operation": operation, "reply": asdict(reply) if reply else None})

    def delay(self, operation: str, seconds: float, *, body_contains: str = "") -> None:
        """Pause ``seconds`` before serving ``operation`` requests whose body contains the text."""
        self._control(
            "delay", {"operation": operation, "seconds": seconds, "body_contains": body_contains}
        )

    def reset(self) -> None:
        """Clear the call counts, the injected errors and the delays. Stored data stays."""
        self._control("reset")

    def close(self) -> None:
        self._http.clear()

    def _control(self, action: str, request: object = None) -> Any:
        response = self._http.request(
            "POST", f"{self.endpoint_url}{_CONTROL_PREFIX}{action}", json=request
        )
        assert response.status == 200, response.data
        return response.json()


@contextmanager
def local_aws_server(environ: MutableMapping[str, str], *, port: int = 0) -> Iterator[LocalAws]:
    """Run the local AWS server on 127.0.0.1 and point boto3 at it through ``environ``.

    ``port`` 0 picks a free port. ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and
    ``AWS_ENDPOINT_URL_DYNAMODB`` are boto3's own settings, so the function needs no code to use
    the local server. The server's data lives as long as its process.
    """
    process = subprocess.Popen(  # noqa: S603 - runs this module with this interpreter
        [sys.executable, "-m", "tests.support.aws", "--port", str(port)],
        cwd=REPOSITORY_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready_line = process.stdout.readline().strip()
        if not ready_line.startswith("http://"):
            raise RuntimeError(f"local AWS server did not start: {ready_line!r}")
        environ.update(AWS_TEST_ENVIRONMENT)
        environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = ready_line
        environ["AWS_ENDPOINT_URL_DYNAMODB"] = ready_line
        aws = LocalAws(ready_line)
        try:
            yield aws
        finally:
            aws.close()
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def create_attempts_table(name: str) -> None:
    """Create the attempt-counter table as template.yaml defines it, TTL included."""
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    client.close()


def _serve(port: int) -> None:
    # Imported here so that test processes that only talk to the server do not load moto.
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    # werkzeug logs every request line on stderr, which buries test and `make run` output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = CountingAwsApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    host, bound_port = server.server_address[:2]
    print(f"http://{host}:{bound_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve moto's Secrets Manager and DynamoDB.")
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    _serve(parser.parse_args().port)
