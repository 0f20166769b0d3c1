"""A local Secrets Manager: moto's server on loopback, reached the way boto3 reaches AWS.

The server counts the API calls it receives, by operation, so that tests can show how often
the function fetches its secret, and it can fail chosen operations with an AWS error.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

REGION = "eu-central-1"

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


class CountingAwsApp:
    """WSGI middleware around moto that counts operations and injects errors."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._errors: dict[str, AwsErrorReply] = {}

    def fail(self, operation: str, reply: AwsErrorReply | None) -> None:
        """Answer ``operation`` (for example "GetSecretValue") with ``reply`` until cleared."""
        with self._lock:
            if reply is None:
                self._errors.pop(operation, None)
            else:
                self._errors[operation] = reply

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._errors.clear()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target.rpartition(".")[2]
        with self._lock:
            if operation:
                self.calls[operation] += 1
            reply = self._errors.get(operation)
        if reply is None:
            return self._app(environ, start_response)

        body = json.dumps({"__type": reply.code, "message": reply.message}).encode()
        start_response(
            f"{reply.status} Injected",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
        )
        return [body]


@contextmanager
def local_secrets_manager(
    environ: MutableMapping[str, str], *, port: int = 0
) -> Iterator[CountingAwsApp]:
    """Run moto's server on 127.0.0.1 and point boto3 at it through ``environ``.

    ``port`` 0 picks a free port.

    ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` is boto3's own setting, so the function needs no code
    to use the local server.
    """
    # werkzeug logs every request line on stderr, which buries test and `make run` output.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = CountingAwsApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    environ.update(AWS_TEST_ENVIRONMENT)
    environ["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = f"http://{host}:{port}"
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
