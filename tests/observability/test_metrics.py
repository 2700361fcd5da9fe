"""Every metric of docs/API.md moves when its event happens, added up over both gunicorn workers of
a service; the security events carry who and where, never a secret; /metrics is not public.

The stack runs the `make run` way (two workers per service, the gateway, the exporter); each test
scrapes, acts through the gateway, and scrapes again.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.browser import Browser
from tests.support.stack import Stack

pytestmark = pytest.mark.servers
PASSWORD = "correct horse battery"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    answer = requests.get(f"{url}/metrics", timeout=5)
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


class Scrapes:
    """Each service's samples before the test acted, and what changed since."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.before = {name: scrape(stack.service_url(name)) for name in ("auth", "profile", "board")}

    def delta(self, service: str, name: str, **labels: str) -> float:
        """The change of the sum of every sample of `name` whose labels include `labels`."""
        now = scrape(self.stack.service_url(service))

        def total(samples: Samples) -> float:
            wanted = set(labels.items())
            return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)

        return total(now) - total(self.before[service])


def new_user(stack: Stack, prefix: str = "metrics") -> tuple[str, str]:
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"
    signup = requests.post(f"{stack.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "M"})
    assert signup.status_code == 201, signup.text
    return email, signup.json()["user"]["id"]


def logged_in(stack: Stack, email: str) -> Browser:
    browser = Browser(stack.url)
    assert browser.post_credentials("/api/auth/login", {"email": email, "password": PASSWORD}).status_code == 200
    return browser


def pids_answering(stack: Stack, marker: str, component: str) -> set[int]:
    """The worker pids of `component` whose request log lines carry the request id `marker`."""
    pids = set()
    for line in stack.log_lines(marker, component):
        if f"{component}.1" in line and line.rstrip().endswith("}"):
            entry = json.loads(line[line.index("{") :])
            if entry.get("request_id") == marker and entry.get("logger") == "access":
                pids.add(entry["pid"])
    return pids


def until_both_workers_answered(stack: Stack, component: str, call: Callable[[str], requests.Response]) -> int:
    """Make `call` (given a request id) 8 at a time until both of `component`'s workers answered
    one; return how many calls were made. The gateway keeps upstream connections alive, so
    concurrent calls are what opens connections that either worker may accept."""
    marker = f"both-{uuid.uuid4().hex[:8]}"
    made = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(30):
            statuses = list(pool.map(lambda _: call(marker).status_code, range(8)))
            made += len(statuses)
            if len(pids_answering(stack, marker, component)) >= 2:
                return made
    raise AssertionError(f"{component}'s requests all went to one worker")


def test_requests_and_verifications_are_counted_over_both_workers(stack):
    email, _ = new_user(stack)
    browser = logged_in(stack, email)
    scrapes = Scrapes(stack)
    made = until_both_workers_answered(
        stack, "profile", lambda marker: browser.api("GET", "/api/profiles/me", headers={"X-Request-ID": marker})
    )
    missing = requests.get(f"{stack.url}/api/profiles/me")
    invalid = requests.get(f"{stack.url}/api/profiles/me", headers={"Authorization": "Bearer not.a.token"})
    # (a malformed token fails before its signature is checked, and is counted as a check.)
    unmatched = requests.get(f"{stack.url}/api/profiles/me/{uuid.uuid4().hex}/deeper")
    assert (missing.status_code, invalid.status_code, unmatched.status_code) == (401, 401, 404)

    checked = scrapes.delta("profile", "access_token_signature_checks_total")
    for _ in range(10):  # both workers verified the token once already: cache hits only
        assert browser.api("GET", "/api/profiles/me").status_code == 200
    made += 10

    assert scrapes.delta("profile", "http_requests_total", route="/api/profiles/me", status="200") == made
    assert scrapes.delta("profile", "http_request_duration_seconds_count", route="/api/profiles/me") == made + 2
    assert scrapes.delta("profile", "http_requests_total", route="unmatched", status="404") == 1
    assert scrapes.delta("profile", "access_token_verifications_total", outcome="ok") == made
    assert scrapes.delta("profile", "access_token_verifications_total", outcome="missing") == 1
    assert scrapes.delta("profile", "access_token_verifications_total", outcome="invalid") == 1
    assert checked >= 2 and scrapes.delta("profile", "access_token_signature_checks_total") == checked
    # The route label is the URL rule, never a path a client made up.
    exposed = requests.get(f"{stack.service_url('profile')}/metrics").text
    assert unmatched.url.rsplit("/", 2)[-2] not in exposed

    time.sleep(2.5)  # the access token expires
    assert browser.api("GET", "/api/profiles/me").json()["code"] == "token_expired"
    assert scrapes.delta("profile", "access_token_verifications_total", outcome="expired") == 1


def test_login_outcomes_are_counted_over_both_workers(stack):
    email, _ = new_user(stack)
    scrapes = Scrapes(stack)
    made = until_both_workers_answered(
        stack,
        "auth",
        lambda marker: requests.post(
            f"{stack.url}/api/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Request-ID": marker},
        ),
    )
    victim, _ = new_user(stack, "victim")
    statuses = Counter(
        requests.post(f"{stack.url}/api/auth/login", json={"email": victim, "password": "wrong"}).status_code
        for _ in range(5)
    )
    assert statuses == {401: 3, 429: 2}  # LOGIN_MAX_FAILURES=3
    assert scrapes.delta("auth", "auth_logins_total", outcome="success") == made
    assert scrapes.delta("auth", "auth_logins_total", outcome="invalid_credentials") == 3
    assert scrapes.delta("auth", "auth_logins_total", outcome="throttled") == 2
    assert scrapes.delta("auth", "http_requests_total", route="/api/auth/login") == made + 5


def test_refresh_outcomes_and_ended_sessions_are_counted(stack):
    email, _ = new_user(stack)
    scrapes = Scrapes(stack)
    browser = logged_in(stack, email)
    first = browser.refresh_token
    assert browser.cookie_call("/api/auth/refresh").status_code == 200  # rotated
    second = browser.refresh_token
    browser.refresh_token = first
    assert browser.cookie_call("/api/auth/refresh").status_code == 200  # grace: the race's loser
    browser.refresh_token = second
    assert browser.cookie_call("/api/auth/refresh").status_code == 200  # rotated
    browser.refresh_token = first
    assert browser.cookie_call("/api/auth/refresh").json()["code"] == "invalid_refresh_token"  # reused: theft
    forged = Browser(stack.url)
    forged.refresh_token = f"{uuid.uuid4().hex}.0.{'A' * 43}"
    assert forged.cookie_call("/api/auth/refresh").status_code == 401  # unknown
    assert Browser(stack.url).cookie_call("/api/auth/refresh").status_code == 401  # missing
    cross_site = requests.post(f"{stack.url}/api/auth/refresh", headers={"Origin": "https://evil.example"})
    assert cross_site.json()["code"] == "csrf_rejected"

    for outcome, expected in {
        "rotated": 2,
        "grace": 1,
        "reused": 1,
        "unknown": 1,
        "missing": 1,
        "csrf_rejected": 1,
    }.items():
        assert scrapes.delta("auth", "auth_refreshes_total", outcome=outcome) == expected, outcome

    # Ended sessions by reason: logout, revoked (from the list), logout_all (two at once), reuse.
    logged_in(stack, email).cookie_call("/api/auth/logout")
    keeper = logged_in(stack, email)
    logged_in(stack, email)  # the session to end from the list
    other_id = next(s["id"] for s in keeper.api("GET", "/api/auth/sessions").json()["sessions"] if not s["current"])
    assert keeper.api("DELETE", f"/api/auth/sessions/{other_id}").status_code == 204
    logged_in(stack, email)
    assert keeper.api("POST", "/api/auth/logout-all").status_code == 204
    for reason, expected in {"logout": 1, "revoked": 1, "logout_all": 2, "reuse": 1}.items():
        assert scrapes.delta("auth", "auth_sessions_revoked_total", reason=reason) == expected, reason


def test_the_revocation_feed_and_jwks_reads_are_measured(stack):
    email, _ = new_user(stack)
    browser = logged_in(stack, email)
    # A worker follows the feed from its first request on: make both answer one.
    until_both_workers_answered(
        stack, "profile", lambda marker: browser.api("GET", "/api/profiles/me", headers={"X-Request-ID": marker})
    )
    scrapes = Scrapes(stack)
    assert browser.cookie_call("/api/auth/logout").status_code == 204
    deadline = time.monotonic() + 10
    while browser.api("GET", "/api/profiles/me").status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scrapes.delta("profile", "access_token_verifications_total", outcome="revoked") == 1
    # Each worker applied the logout live: two observations of the lag, added up.
    assert scrapes.delta("profile", "revocation_feed_lag_seconds_count") == 2
    stale = [v for (name, _), v in scrapes.before["profile"].items() if name == "revocation_feed_stale_seconds"]
    assert stale == [0]
    time.sleep(1.5)  # JWKS_REFRESH_INTERVAL=0.5
    assert scrapes.delta("profile", "jwks_refreshes_total", outcome="ok") >= 2


def test_metrics_are_served_in_the_documented_text_format(stack):
    # docs/API.md names the exposition format's Content-Type; prometheus-client's "latest" moved on
    # to version=1.0.0, which a scraper that asks for 0.0.4 only would not take.
    prometheus_accept = "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"
    for name in ("auth", "profile", "board"):
        for headers in ({}, {"Accept": prometheus_accept}):
            answer = requests.get(f"{stack.service_url(name)}/metrics", headers=headers, timeout=5)
            assert answer.status_code == 200
            assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8", name
            assert "# TYPE http_requests_total counter" in answer.text


def test_metrics_are_never_served_through_the_gateway(stack):
    for path in ("/metrics", "/api/auth/metrics", "/api/profiles/../../metrics", "/api/boards/%2e%2e/%2e%2e/metrics"):
        answer = requests.get(f"{stack.url}{path}")
        assert answer.status_code == 404, path
        assert "http_requests_total" not in answer.text
    for name in ("auth", "profile", "board"):
        assert "http_requests_total" in requests.get(f"{stack.service_url(name)}/metrics").text


def test_the_gateway_exporter_counts_nginx_requests(stack):
    exporter = f"http://127.0.0.1:{stack.ports['gateway_metrics']}"

    def requests_seen() -> float:
        return scrape(exporter)[("nginx_http_requests_total", frozenset())]

    before = requests_seen()
    for _ in range(5):
        requests.get(f"{stack.url}/healthz")
    assert requests_seen() - before >= 5
    assert scrape(exporter)[("nginx_up", frozenset())] == 1


def security_events(stack: Stack) -> list[dict[str, object]]:
    events = []
    for line in stack.log().splitlines():
        if '"logger": "security"' in line:
            events.append(json.loads(line[line.index("{") :]))
    return events


def test_security_events_say_who_and_where_and_never_a_secret(stack):
    email, user_id = new_user(stack, "events")
    browser = logged_in(stack, email)
    first = browser.refresh_token
    browser.cookie_call("/api/auth/refresh")
    secrets = [PASSWORD, email, first, browser.refresh_token, browser.access_token]
    browser.cookie_call("/api/auth/refresh")
    browser.refresh_token = first
    assert browser.cookie_call("/api/auth/refresh").status_code == 401  # two behind: reuse ends the session
    requests.post(f"{stack.url}/api/auth/login", json={"email": email, "password": "wrong"})
    second = logged_in(stack, email)
    secrets += [second.refresh_token, second.access_token]
    second.api("POST", "/api/auth/logout-all")
    time.sleep(0.5)  # honcho relays the lines

    mine = [event for event in security_events(stack) if event.get("user_id") == user_id]
    assert {event["event"] for event in mine} >= {
        "login_succeeded",
        "login_failed",
        "refresh_token_reuse",
        "logout_all",
    }
    for event in mine:
        assert event["client_address"] == "127.0.0.1" and event["user_agent"].startswith("python-requests")
        if event["event"] in ("login_succeeded", "refresh_token_reuse"):
            assert re.fullmatch(r"[0-9a-f]{32}", event["session_id"])
    every_line = stack.log()
    for secret in secrets:
        assert secret and secret not in every_line, "a secret reached the log"
