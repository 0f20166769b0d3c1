"""Soak run: 10,000 sequential warm invocations in one process against the sandbox.

It prints its figures and asserts correctness and memory growth only, never time, so a slow
machine cannot fail it.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from otp_check.observability import logger
from tests.support.aws import LocalAws
from tests.support.events import api_event, valid_request
from tests.support.invoke import invoke
from tests.support.paynet_sandbox import PaynetSandbox

pytestmark = pytest.mark.usefixtures("function_env")

INVOCATIONS = 10_000
BLOCK = 1_000
SECRET_MAX_AGE_SECONDS = 300
# Allowed growth of traced memory between the end of the second and the last block. A leak of
# even 10 bytes per invocation would exceed it over the 8,000 invocations in between.
MAX_GROWTH_BYTES = 64 * 1024


class _NullStream(io.TextIOBase):
    """A text stream that drops what is written, so that 20,000 log lines stay out of memory."""

    def write(self, text: str) -> int:
        return len(text)


@contextlib.contextmanager
def quiet_output() -> Iterator[None]:
    """Send logs and metrics nowhere, and stop pytest from keeping every log record.

    pytest's output and log capture hold everything in memory, which would read as a leak
    here. This is a context manager for the test body, not a fixture, because pytest puts its
    own sys.stdout back between the setup and call phases.
    """
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream = handler.setStream(_NullStream())
    capture_handlers = [
        root_handler
        for root_handler in logging.getLogger().handlers
        if type(root_handler).__name__ == "LogCaptureHandler"
    ]
    previous_levels = [capture.level for capture in capture_handlers]
    for capture in capture_handlers:
        capture.setLevel(logging.CRITICAL + 1)
    with contextlib.redirect_stdout(_NullStream()):
        yield
    for capture, level in zip(capture_handlers, previous_levels, strict=True):
        capture.setLevel(level)
    handler.setStream(previous_stream)


def _traced_bytes() -> int:
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    return current


def test_warm_invocations_stay_flat(
    sandbox: PaynetSandbox,
    local_aws: LocalAws,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PAYNET_SECRET_MAX_AGE_SECONDS", str(SECRET_MAX_AGE_SECONDS))
    verified_event = api_event(valid_request())
    rejected_event = api_event(valid_request(otp_code="WRONG9"))
    wrong_responses = 0
    paynet_requests = 0
    paynet_connections = 0
    memory_after_block: dict[int, int] = {}

    started = time.monotonic()
    with quiet_output():
        for index in range(1, INVOCATIONS + 1):
            # Every twentieth check uses a wrong code, so both paths run. The 500 failed checks
            # stay under the phone limit of 1,000 that conftest sets.
            rejected = index % 20 == 0
            response = invoke(rejected_event if rejected else verified_event)
            expected_status = 422 if rejected else 200
            if response.status != expected_status:
                wrong_responses += 1

            if index % BLOCK == 0:
                # The sandbox records every request. Clearing it keeps the sandbox's memory
                # out of the measurement.
                paynet_requests += len(sandbox.requests)
                paynet_connections += sandbox.connection_count
                sandbox.reset()
            if index == BLOCK:
                tracemalloc.start()
            if index % BLOCK == 0 and index >= 2 * BLOCK:
                memory_after_block[index] = _traced_bytes()
    elapsed = time.monotonic() - started
    tracemalloc.stop()

    growth = memory_after_block[INVOCATIONS] - memory_after_block[2 * BLOCK]
    secret_fetches = local_aws.calls["GetSecretValue"]
    with capsys.disabled():
        print(
            f"\nsoak: {INVOCATIONS} invocations in {elapsed:.1f} s "
            f"({elapsed / INVOCATIONS * 1000:.2f} ms each, tracemalloc on for 90%, "
            f"{os.cpu_count()} cores)\n"
            f"soak: traced memory after 2,000: {memory_after_block[2 * BLOCK]} B, "
            f"after 10,000: {memory_after_block[INVOCATIONS]} B, growth {growth} B\n"
            f"soak: GetSecretValue calls {secret_fetches}, "
            f"Paynet connections {paynet_connections}, wrong responses {wrong_responses}"
        )

    assert wrong_responses == 0
    assert paynet_requests == INVOCATIONS
    assert paynet_connections == 1
    assert secret_fetches == 1 + int(elapsed // SECRET_MAX_AGE_SECONDS)
    assert growth < MAX_GROWTH_BYTES
