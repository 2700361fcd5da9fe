"""A bounded load driver: simulated users, each with two "tabs", on loopback only.

Each user signs up and logs in once; then both tabs loop until the deadline, reading the profile,
writing posts and refreshing the session through one shared cookie jar (as a browser's tabs do).
Refreshes race the way two tabs without coordination would: both present the same cookie at
the same moment, and both must get the same successor. Like the web client, a tab that finds the
cookie already rotated by the other tab does not refresh again.
Run it on its own: `python -m tests.load.driver http://127.0.0.1:8080 --users 50 --seconds 60`.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

PASSWORD = "load test password"


@dataclass
class User:
    email: str
    access_token: str = ""
    refresh_tokens: list[str] = field(default_factory=list)  # every token the server handed out
    posts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refresh_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def refresh_token(self) -> str:
        return self.refresh_tokens[-1]


@dataclass
class Report:
    statuses: Counter = field(default_factory=Counter)
    by_call: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, call: str, response: requests.Response, expected: set[int]) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            self.by_call[call] += 1
            if response.status_code not in expected:
                self.failures.append(f"{call}: {response.status_code} {response.text[:200]}")


def _cookie(response: requests.Response) -> str | None:
    header = response.headers.get("Set-Cookie", "")
    if not header.startswith("refresh_token="):
        return None
    return header.split(";", 1)[0].split("=", 1)[1] or None  # '' clears the cookie


class LoadRun:
    def __init__(self, base: str, users: int, seconds: float) -> None:
        self.base = base
        self.users = [User(f"load-{uuid.uuid4().hex[:10]}@example.com") for _ in range(users)]
        self.seconds = seconds
        self.report = Report()

    def _start_user(self, user: User, http: requests.Session) -> None:
        body = {"email": user.email, "password": PASSWORD}
        self.report.record("signup", http.post(f"{self.base}/api/auth/signup", json={**body, "name": "Load"}), {201})
        response = http.post(f"{self.base}/api/auth/login", json=body)
        self.report.record("login", response, {200})
        user.access_token = response.json()["access_token"]
        user.refresh_tokens.append(_cookie(response))

    def _refresh(self, user: User, http: requests.Session) -> None:
        observed = user.refresh_token
        with user.refresh_lock:
            if user.refresh_token != observed:
                return  # the other tab refreshed meanwhile
            # Requests keeps Secure cookies off plain http, so the jar is ours: the newest cookie wins.
            headers = {"Cookie": f"refresh_token={observed}"}
            with ThreadPoolExecutor(max_workers=1) as other_tab:
                racer = other_tab.submit(requests.post, f"{self.base}/api/auth/refresh", headers=headers)
                response = http.post(f"{self.base}/api/auth/refresh", headers=headers)
                racing = racer.result()  # re-raises what the other tab raised
            for answer in (response, racing):
                self.report.record("refresh", answer, {200})
            successors = {_cookie(answer) for answer in (response, racing)}
            if len(successors) != 1:
                with self.report.lock:
                    self.report.failures.append(f"refresh race forked the session: {len(successors)} successors")
            if response.status_code == 200:
                with user.lock:
                    user.refresh_tokens.append(_cookie(response))
                    user.access_token = response.json()["access_token"]

    def _tab(self, user: User, deadline: float, seed: int) -> None:
        rng = random.Random(seed)
        http = requests.Session()
        while time.monotonic() < deadline:
            choice = rng.random()
            bearer = {"Authorization": f"Bearer {user.access_token}"}
            if choice < 0.25:
                self._refresh(user, http)
            elif choice < 0.65:
                self.report.record("profile", http.get(f"{self.base}/api/profiles/me", headers=bearer), {200})
            else:
                response = http.post(
                    f"{self.base}/api/boards",
                    headers=bearer,
                    json={"title": f"load {uuid.uuid4().hex[:6]}", "content": "x" * rng.randint(1, 2000)},
                )
                self.report.record("post", response, {201})
                if response.status_code == 201:
                    with user.lock:
                        user.posts.append(response.json()["id"])

    def run(self) -> Report:
        """Start every user, run the tabs until the deadline; an exception in any thread is raised here."""
        with ThreadPoolExecutor(max_workers=len(self.users)) as pool:
            for started in [pool.submit(self._start_user, user, requests.Session()) for user in self.users]:
                started.result()
        deadline = time.monotonic() + self.seconds
        with ThreadPoolExecutor(max_workers=2 * len(self.users)) as pool:
            tabs = [
                pool.submit(self._tab, user, deadline, i * 2 + tab)
                for i, user in enumerate(self.users)
                for tab in range(2)
            ]
            for tab in tabs:
                tab.result()
        return self.report

    def summary(self) -> str:
        posts = sum(len(u.posts) for u in self.users)
        refreshes = self.report.by_call["refresh"]
        lines = [
            f"load: {len(self.users)} users × 2 tabs for {self.seconds:.0f} s",
            f"requests: {sum(self.report.statuses.values())} "
            f"({sum(self.report.statuses.values()) / self.seconds:.0f}/s), by call {dict(self.report.by_call)}",
            f"statuses: {dict(sorted(self.report.statuses.items()))}",
            f"posts acknowledged: {posts}, refreshes: {refreshes}, failures: {len(self.report.failures)}",
        ]
        return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    run = LoadRun(args.base_url, args.users, args.seconds)
    run.run()
    print(run.summary())


if __name__ == "__main__":
    main()
