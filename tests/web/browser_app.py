"""Driving the web client like a person (`WebApp`) and watching its traffic (`Traffic`)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from playwright.sync_api import BrowserContext, Locator, Page, Request, Response, expect

PASSWORD = "correct horse battery"
REFRESH_PATH = "/api/auth/refresh"


def new_email(prefix: str = "web") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


def sign_up_by_api(stack_url: str, name: str, email: str | None = None) -> str:
    """An account made over HTTP, for tests whose subject is not the signup form."""
    email = email or new_email(re.sub(r"[^a-z]", "", name.lower()) or "web")
    response = requests.post(f"{stack_url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": name})
    assert response.status_code == 201, response.text
    return email


def wait_until(condition: Callable[[], object], page: Page, what: str, timeout: float = 10) -> None:
    """Poll a condition that Playwright's auto-waiting cannot see (test-side state, lock queues)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        page.wait_for_timeout(20)  # lets Playwright deliver events meanwhile


def api_session(stack_url: str, email: str) -> requests.Session:
    """Someone else, over HTTP with a fresh access token (it lives ACCESS_TOKEN_TTL seconds)."""
    login = requests.post(f"{stack_url}/api/auth/login", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    return session


def thumbprint(app: WebApp) -> str:
    """The page's DPoP key thumbprint, as the token panel shows it once the session is bound."""
    binding = app.page.locator("#token-binding")
    expect(binding).to_have_text(re.compile(r"^bound to this browser · key "))
    value = binding.get_attribute("data-thumbprint")
    assert value and re.fullmatch(r"[A-Za-z0-9_-]{43}", value), value
    return value


@dataclass
class Exchange:
    method: str
    path: str
    status: int | None = None


@dataclass
class Traffic:
    """Every /api request of a browser context, in order, with how many refreshes overlapped."""

    exchanges: list[Exchange] = field(default_factory=list)
    refreshes_in_flight: int = 0
    max_refreshes_in_flight: int = 0
    _by_request: dict[int, Exchange] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, context: BrowserContext) -> Traffic:
        context.on("request", self._on_request)
        context.on("response", self._on_response)
        context.on("requestfinished", self._on_done)
        context.on("requestfailed", self._on_done)
        return self

    def _on_request(self, request: Request) -> None:
        path = urlsplit(request.url).path
        if not path.startswith("/api/"):
            return
        with self._lock:
            exchange = Exchange(request.method, path)
            self.exchanges.append(exchange)
            self._by_request[id(request)] = exchange
            if path == REFRESH_PATH:
                self.refreshes_in_flight += 1
                self.max_refreshes_in_flight = max(self.max_refreshes_in_flight, self.refreshes_in_flight)

    def _on_response(self, response: Response) -> None:
        with self._lock:
            exchange = self._by_request.get(id(response.request))
            if exchange:
                exchange.status = response.status

    def _on_done(self, request: Request) -> None:
        with self._lock:
            exchange = self._by_request.pop(id(request), None)
            if exchange and exchange.path == REFRESH_PATH:
                self.refreshes_in_flight -= 1

    def reset(self) -> None:
        with self._lock:
            self.exchanges.clear()
            self.max_refreshes_in_flight = self.refreshes_in_flight

    def calls(self, method: str, path: str) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.method == method and e.path == path]

    def refreshes(self) -> list[Exchange]:
        return self.calls("POST", REFRESH_PATH)


class WebApp:
    """One tab of the web client, with the steps a person takes."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @property
    def panel(self) -> Locator:
        return self.page.get_by_role("complementary", name="Token panel")

    @property
    def log(self) -> Locator:
        return self.page.locator("#token-log")

    @property
    def composer(self) -> Locator:
        return self.page.locator("form.composer")

    @property
    def posts(self) -> Locator:
        return self.page.locator("article.post")

    def open(self, path: str = "/#/board") -> WebApp:
        self.page.goto(path)
        expect(self.page.locator("#token-status")).not_to_have_text("restoring")
        return self

    def log_in(self, email: str, password: str = PASSWORD) -> WebApp:
        self.page.locator("#account").get_by_role("link", name="Log in").click()
        form = self.page.locator("form")
        form.get_by_label("Email").fill(email)
        form.get_by_label("Password").fill(password)
        form.get_by_role("button", name="Log in").click()
        self.expect_signed_in()
        return self

    def expect_signed_in(self, name: str | None = None) -> None:
        expect(self.page.get_by_role("button", name="Log out", exact=True)).to_be_visible()
        if name:
            expect(self.page.locator(".account-name")).to_have_text(name)

    def expect_signed_out(self) -> None:
        expect(self.page.locator("#account").get_by_role("link", name="Log in")).to_be_visible()
        expect(self.page.get_by_role("button", name="Log out", exact=True)).to_have_count(0)
        expect(self.page.locator("#token-status")).to_have_text("signed out")

    def wait_until_expired(self) -> None:
        """The panel's countdown reaches zero: the server now answers token_expired too."""
        expect(self.page.locator("#token-countdown")).to_have_attribute("data-state", "expired", timeout=15_000)
        self.page.wait_for_timeout(100)  # same clock; a hair past `exp` for the server's `>` check

    def write_post(self, title: str, content: str) -> Locator:
        self.composer.get_by_label("Title").fill(title)
        self.composer.get_by_label("Content").fill(content)
        self.composer.get_by_role("button", name="Post").click()
        written = self.posts.filter(has=self.page.get_by_role("heading", name=title, exact=True))
        expect(written).to_have_count(1)
        return self.post_by_id(written.get_attribute("data-post-id"))

    def post_by_id(self, post_id: str) -> Locator:
        """A post's card, whatever it shows (an edit form has no title text to match)."""
        return self.page.locator(f'article.post[data-post-id="{post_id}"]')

    def fire_burst(self) -> None:
        self.page.get_by_role("button", name=re.compile(r"^Fire \d+ requests$")).click()

    def expect_log(self, text: str | re.Pattern[str]) -> None:
        expect(self.log.locator("li .log-text").filter(has_text=text).first).to_be_visible()

    def log_texts(self) -> list[str]:
        return self.log.locator("li .log-text").all_inner_texts()

    def log_entries(self) -> list[tuple[str, int]]:
        """The panel's log, newest first: (text, how many times in a row it happened)."""
        return [
            (text, int(count))
            for text, count in self.log.locator("li").evaluate_all(
                "items => items.map((li) => [li.dataset.text, li.dataset.count])"
            )
        ]
