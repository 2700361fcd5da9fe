"""The token client against the real stack in Chromium when the world misbehaves: the network
drops while the token expires, the page's clock is ten minutes off, the page was hidden while the
token expired. Each test makes its own client on the page (`window.tc`), with its own lock and
channel names, and logs in a fresh account over it; the traffic fixture sees every /api request.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from playwright.sync_api import BrowserContext, Page

from tests.web.browser_app import PASSWORD, Traffic, sign_up_by_api, wait_until
from tests.web.conftest import ACCESS_TOKEN_TTL

SKEW = 600  # seconds: a clock ten minutes off


def start_client(page: Page, email: str, refresh_ahead: int = 0) -> None:
    page.evaluate(
        """async ({ email, password, name, refreshAhead }) => {
        const { TokenClient } = await import("/js/token-client/index.js");
        window.tc = new TokenClient({ name, refreshAhead });
        await window.tc.login({ email, password });
    }""",
        {"email": email, "password": PASSWORD, "name": f"robust-{uuid.uuid4().hex}", "refreshAhead": refresh_ahead},
    )


def snapshot(page: Page) -> dict:
    return page.evaluate("() => window.tc.getSnapshot()")


def call(page: Page, path: str = "/api/profiles/me") -> dict:
    """`tc.fetch(path)`: the status, or the error's name and code when it rejects."""
    return page.evaluate(
        """async (path) => {
        try {
            const response = await window.tc.fetch(path);
            return { status: response.status };
        } catch (error) {
            return { error: error.name, code: error.code, isTypeError: error instanceof TypeError };
        }
    }""",
        path,
    )


def wait_until_expired(page: Page) -> None:
    """The token's expiry (on the page's clock, skew corrected) has passed, and a hair more."""
    page.wait_for_function("() => Date.now() > window.tc.getSnapshot().expiresAt + 300", timeout=15_000)


@pytest.fixture
def page(browsing, context: BrowserContext) -> Page:
    return browsing.new_tab(context).open().page


def test_network_lost_while_the_token_expires_keeps_the_session_and_renews_when_back(
    stack, page: Page, context: BrowserContext, traffic: Traffic
):
    start_client(page, sign_up_by_api(stack.url, "Offline"))
    wait_until_expired(page)
    traffic.reset()
    context.set_offline(True)
    failed = call(page)
    assert failed == {"error": "NetworkError", "code": "network_error", "isTypeError": True}
    state = snapshot(page)
    assert (state["status"], state["offline"], state["user"]["name"]) == ("signed-in", True, "Offline")
    context.set_offline(False)  # the page gets `online`: the client renews before the next call
    wait_until(lambda: not snapshot(page)["offline"] and snapshot(page)["refreshing"] is False, page, "renewed")
    assert call(page) == {"status": 200}
    assert [e.status for e in traffic.refreshes()] == [200]
    # The call made offline never got an answer (None); the next one needed no 401 to renew.
    assert [e.status for e in traffic.calls("GET", "/api/profiles/me")] == [None, 200]


def test_refresh_failing_on_the_network_is_retried_and_is_not_a_logout(
    stack, page: Page, context: BrowserContext, traffic: Traffic
):
    start_client(page, sign_up_by_api(stack.url, "Flaky"))
    wait_until_expired(page)
    traffic.reset()
    context.route("**/api/auth/refresh", lambda route: route.abort("internetdisconnected"))
    failed = call(page)
    assert failed["error"] == "NetworkError"
    assert snapshot(page)["status"] == "signed-in" and snapshot(page)["offline"] is True
    log = page.evaluate("() => window.tc.getLog().map((e) => e.text)")
    retries = [text.split(" in ")[0] for text in log if text.startswith("refresh failed (network) → retry")]
    assert retries == [f"refresh failed (network) → retry {n}" for n in (1, 2, 3)], "bounded: three retries"
    context.unroute("**/api/auth/refresh")
    assert call(page) == {"status": 200}
    assert snapshot(page)["offline"] is False and snapshot(page)["status"] == "signed-in"


@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["page-clock-fast", "page-clock-slow"])
def test_a_page_clock_ten_minutes_off_neither_loops_nor_sends_expired_tokens(
    stack, browsing, context: BrowserContext, traffic: Traffic, skew: int
):
    page = browsing.new_tab(context).page
    page.clock.set_system_time(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=skew))
    page.goto("/#/board")
    wait_until(lambda: any(e.status for e in traffic.refreshes()), page, "the app's own restore answered")
    traffic.reset()  # the app's own restore on load (no cookie yet) is not this test's
    start_client(page, sign_up_by_api(stack.url, "Skewed"), refresh_ahead=1)
    state = page.evaluate("() => ({ ...window.tc.getSnapshot(), now: Date.now(), offset: window.tc.clockOffset })")
    assert abs(state["offset"] + skew * 1000) < 2_000, "the offset is measured"
    # On the page's clock the token lives its lifetime from now, and the proactive refresh is ahead.
    assert 0 < state["expiresAt"] - state["now"] <= ACCESS_TOKEN_TTL * 1000 + 1_000
    assert state["now"] < state["refreshAheadAt"] < state["expiresAt"], "no refresh due at once: no loop"
    # The proactive refresh happens before expiry (by the server's clock), so calls never meet a 401.
    wait_until(lambda: snapshot(page)["refreshes"] >= 2, page, "two proactive refreshes", timeout=15)
    assert call(page) == {"status": 200}
    assert snapshot(page)["refreshes"] <= 3, "one refresh per lifetime, not a loop"
    assert [e.status for e in traffic.refreshes()] == [200] * len(traffic.refreshes())
    # The one 401: the login's DPoP proof, dated by the page's clock; its Date corrects the clock
    # and the proof is signed again (bound, not unbound).
    assert [(e.path, e.status) for e in traffic.exchanges if e.status == 401] == [("/api/auth/login", 401)]
    assert snapshot(page)["keyThumbprint"]


def test_a_page_hidden_while_the_token_expired_refreshes_when_shown_before_the_next_call(
    stack, page: Page, traffic: Traffic
):
    start_client(page, sign_up_by_api(stack.url, "Hidden"))
    page.evaluate(
        """() => {
        window.pageVisibility = "hidden";
        Object.defineProperty(document, "visibilityState", { configurable: true, get: () => window.pageVisibility });
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    )
    wait_until_expired(page)
    traffic.reset()
    result = page.evaluate(
        """async () => {
        window.pageVisibility = "visible";
        document.dispatchEvent(new Event("visibilitychange"));
        const response = await window.tc.fetch("/api/profiles/me");  // at once, as an app would
        return { status: response.status, log: window.tc.getLog().map((e) => e.text) };
    }"""
    )
    assert result["status"] == 200
    assert [e.status for e in traffic.refreshes()] == [200]
    assert [e.status for e in traffic.calls("GET", "/api/profiles/me")] == [200], "refreshed before, not after, a 401"
    assert "the page is visible again; the token has expired → refreshing before the next call" in result["log"]
