"""The real stack and a real headless Chromium, for the web client's tests.

The stack runs with a short access-token lifetime and no clock leeway, so tests can watch tokens
expire, and with no refresh-token reuse grace, so that two refreshes racing with one cookie would
end the session (and log `refresh_token_reuse`) instead of being forgiven.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.support.processes import REPO
from tests.support.stack import Stack
from tests.web.browser_app import Traffic, WebApp

ACCESS_TOKEN_TTL = 3
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's; never Playwright's download
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO / "var" / "test-artifacts" / "web"

expect.set_options(timeout=10_000)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@contextmanager
def web_stack(directory: Path, **settings: str) -> Iterator[Stack]:
    """The stack the web tests run against: short access tokens, no leeway and no reuse grace (so a
    test sees expiry and reuse at once), the browser's origin allowed; plus `settings`."""
    running = Stack(
        directory,
        ACCESS_TOKEN_TTL=str(ACCESS_TOKEN_TTL),
        JWT_LEEWAY="0",
        REFRESH_REUSE_GRACE="0",
        browser_origin=True,
        **settings,
    ).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with web_stack(tmp_path_factory.mktemp("web-stack")) as running:
        yield running


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM to its path)")
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def base_url(stack: Stack) -> str:
    # localhost, not 127.0.0.1: Chromium counts http://localhost as a secure context, so the
    # `Secure` refresh cookie is kept and Web Locks are available.
    return f"http://localhost:{stack.ports['gateway']}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots to look at: the board and the token panel, and any failing test's tabs."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for stale in ARTIFACTS.glob("failed-*.png"):
        stale.unlink()
    return ARTIFACTS


class Browsing:
    """Browser contexts (a context is one browser profile: its cookies, tabs, locks, channels)."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.browser = browser
        self.base_url = base_url
        self.contexts: list[BrowserContext] = []
        self.pages: list[Page] = []
        self.problems: list[str] = []

    def new_context(self) -> BrowserContext:
        context = self.browser.new_context(base_url=self.base_url, viewport={"width": 1280, "height": 900})
        self.contexts.append(context)
        return context

    def new_tab(self, context: BrowserContext) -> WebApp:
        page = context.new_page()
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda message: self._console(message.type, message.text))
        page.on("dialog", lambda dialog: (self.problems.append(f"dialog: {dialog.message}"), dialog.dismiss()))
        self.pages.append(page)
        return WebApp(page)

    def _console(self, kind: str, text: str) -> None:
        # Chromium reports every 4xx answer of fetch as a console error; those are expected here.
        if kind == "error" and not text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {text}")

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsing(browser: Browser, base_url: str, request: pytest.FixtureRequest, artifacts: Path) -> Iterator[Browsing]:
    session = Browsing(browser, base_url)
    yield session
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for number, page in enumerate(session.pages):
            if not page.is_closed():
                page.screenshot(path=artifacts / f"failed-{request.node.name}-tab{number}.png", full_page=True)
    session.close()
    # CSP violations and uncaught errors show up here; none is acceptable.
    assert not session.problems, session.problems


@pytest.fixture
def context(browsing: Browsing) -> BrowserContext:
    return browsing.new_context()


@pytest.fixture
def traffic(context: BrowserContext) -> Traffic:
    return Traffic().attach(context)


@pytest.fixture
def app(browsing: Browsing, context: BrowserContext, traffic: Traffic) -> WebApp:
    """The first tab of a fresh browser profile, on the board."""
    return browsing.new_tab(context).open()


@pytest.fixture
def new_tab(browsing: Browsing, context: BrowserContext) -> Callable[[], WebApp]:
    """Another tab of the same browser profile (shared cookie, locks and channels)."""
    return lambda: browsing.new_tab(context)
