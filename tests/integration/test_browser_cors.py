"""CORS in a real browser: a page on another origin calls the local API with fetch.

Playwright drives Debian's Chromium at /usr/bin/chromium, headless. The test page is served
from its own loopback port, which makes it another origin than the API. Chromium resolves no
host names but the loopback ones, so the page can reach nothing beyond this machine.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.local_api import LocalApiProcess, local_api_process

CHROMIUM = "/usr/bin/chromium"

TEST_PAGE = b"""<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>OTP check from another origin</title>
<script>
  // Returns what the page's own code can see of the response, or the error fetch raised.
  async function checkOtp(url, otpCode, sessionId) {
    try {
      const request = {user_gsm: "5324818942", otp_session_id: sessionId, otp_code: otpCode};
      const response = await fetch(url, {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify(request),
      });
      return {
        status: response.status,
        contentType: response.headers.get("Content-Type"),
        retryAfter: response.headers.get("Retry-After"),
        body: await response.json(),
      };
    } catch (error) {
      return {error: error.name, message: error.message};
    }
  }
</script>
</html>
"""

pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=(
        f"Chromium is not installed at {CHROMIUM}. `make test` installs Debian's chromium "
        "package when it runs as root with apt-get; elsewhere install it by hand."
    ),
)


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(TEST_PAGE)))
        self.end_headers()
        self.wfile.write(TEST_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origins() -> Iterator[tuple[str, str]]:
    """Serve the test page from two loopback origins: one allowed by the API, one not."""
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler) for _ in range(2)]
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    try:
        allowed, other = (f"http://127.0.0.1:{server.server_port}" for server in servers)
        yield allowed, other
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(timeout=5)


@pytest.fixture(scope="module")
def local_api(page_origins: tuple[str, str]) -> Iterator[LocalApiProcess]:
    allowed, _ = page_origins
    with local_api_process(CORS_ALLOWED_ORIGINS=allowed) as api:
        yield api


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _check_from(browser: Any, origin: str, api_url: str, otp_code: str, session: str) -> Any:
    page = browser.new_page()
    try:
        page.goto(origin + "/")
        return page.evaluate(
            "([url, code, session]) => checkOtp(url, code, session)",
            [api_url, otp_code, session],
        )
    finally:
        page.close()


def test_allowed_origin_sees_verified(
    browser: Any, page_origins: tuple[str, str], local_api: LocalApiProcess
) -> None:
    allowed, _ = page_origins
    result = _check_from(
        browser, allowed, local_api.base_url + "/v1/card/check_otp", "ART2", "browser-1"
    )

    assert result.get("error") is None, result
    assert result["status"] == 200
    assert result["body"] == {"verified": True, "code": 0, "message": "Başarılı İşlem"}


def test_allowed_origin_reads_422_body(
    browser: Any, page_origins: tuple[str, str], local_api: LocalApiProcess
) -> None:
    allowed, _ = page_origins
    result = _check_from(
        browser, allowed, local_api.base_url + "/v1/card/check_otp", "111111", "browser-2"
    )

    assert result.get("error") is None, result
    assert result["status"] == 422
    assert result["contentType"] == "application/problem+json"
    assert result["body"]["type"] == "urn:paynet-otp-check:problem:otp-rejected"
    assert result["body"]["code"] == 1


def test_allowed_origin_reads_retry_after(
    browser: Any, page_origins: tuple[str, str], local_api: LocalApiProcess
) -> None:
    allowed, _ = page_origins
    url = local_api.base_url + "/v1/card/check_otp"
    results = [_check_from(browser, allowed, url, "222222", "browser-3") for _ in range(6)]

    assert [result.get("status") for result in results] == [422] * 5 + [429]
    assert int(results[-1]["retryAfter"]) > 0


def test_other_origin_blocked(
    browser: Any, page_origins: tuple[str, str], local_api: LocalApiProcess
) -> None:
    _, other = page_origins
    result = _check_from(
        browser, other, local_api.base_url + "/v1/card/check_otp", "ART2", "browser-4"
    )

    assert result.get("error") == "TypeError", result
    assert "status" not in result
