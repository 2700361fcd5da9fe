"""Failover under load: users refresh in racing tabs, the Redis primary is killed (SIGKILL), Sentinel
or the Cluster promotes a replica, and nobody is logged out and no session forks.

Auth runs under gunicorn against the topology's URL with its defaults (REDIS_MIN_REPLICAS_ACK: 1 on
both). While the switch lasts, refreshes answer 503 with Retry-After and the tabs retry with the
cookie they have, as the token client does. Run with `-s` to see the failover time and 503 count.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from auth_service.sessions import USER_KEY_DIGITS
from tests.conftest import TOPOLOGY_PASSWORD
from tests.faults.conftest import TcpProxy, auth_env, post_with_cookie, refresh_cookie_of, signup_and_login
from tests.support.backends import RedisClusterServers, RedisSentinelServers, RedisServer

USERS = 10
TABS = 2  # per browser; they share its cookie jar
PACE_SECONDS = 0.05


@dataclass
class Browser:
    """One user's cookie jar, shared by its tabs; what each presented cookie was exchanged for."""

    cookie: str
    successors: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    logged_out: bool = False


@dataclass
class Drill:
    """Each browser's tabs refresh together, as tabs without coordination do: every round they
    present the same cookie at the same moment (released by a barrier), and both must get the same
    successor. Like the web client, a browser refreshes again only with the cookie it was last
    given, and retries a 503 with the same cookie after Retry-After."""

    auth_url: str
    auth_log: Path
    browsers: list[Browser]
    statuses: Counter[int] = field(default_factory=Counter)
    refused_at: list[float] = field(default_factory=list)  # seconds after the kill of each 503
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    killed_at: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def browse(self, browser: Browser) -> None:
        tabs = [requests.Session() for _ in range(TABS)]
        barrier = threading.Barrier(TABS)

        def refresh(http: requests.Session) -> requests.Response:
            barrier.wait(timeout=30)
            headers = {"Cookie": f"refresh_token={browser.cookie}"}
            return http.post(f"{self.auth_url}/api/auth/refresh", headers=headers, timeout=15)

        try:
            with ThreadPoolExecutor(max_workers=TABS) as pool:
                while not self.stop.is_set() and not browser.logged_out:
                    answers = list(pool.map(refresh, tabs))  # a tab's exception is raised here
                    self.record(browser, answers)
                    retry_after = max(
                        (float(a.headers["Retry-After"]) for a in answers if a.status_code == 503), default=0
                    )
                    self.stop.wait(retry_after or PACE_SECONDS)
        except BaseException as exc:  # noqa: BLE001 - a browser's failure fails the test, not just its thread
            self.errors.append(exc)

    def record(self, browser: Browser, answers: list[requests.Response]) -> None:
        presented = browser.cookie
        with self._lock:
            for answer in answers:
                self.statuses[answer.status_code] += 1
                if answer.status_code == 503 and self.killed_at:
                    self.refused_at.append(time.monotonic() - self.killed_at)
        for answer in answers:
            if answer.status_code == 200:
                successor = refresh_cookie_of(answer)
                assert successor
                browser.successors[presented].add(successor)
                browser.cookie = successor
            elif answer.status_code == 503:
                assert answer.headers["Retry-After"] == "1", answer.headers
                assert answer.json()["code"] == "unavailable"
            elif answer.status_code == 401:
                browser.logged_out = True
            else:
                raise AssertionError(f"refresh answered {answer.status_code}: {answer.text[:300]}")

    def run(self, fail_over: Callable[[], float], *, settle: float = 3.0) -> float:
        """Refresh in every browser, call `fail_over()` (kills, waits, returns the promotion time), keep
        refreshing `settle` seconds more, stop; return the promotion time."""
        threads = [threading.Thread(target=self.browse, args=(browser,), daemon=True) for browser in self.browsers]
        for thread in threads:
            thread.start()
        time.sleep(2)
        self.killed_at = time.monotonic()
        try:
            promoted = fail_over()
            time.sleep(settle)
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(30)
        assert not self.errors, self.errors
        return promoted

    def assert_nobody_lost(self) -> None:
        assert self.statuses[200] > len(self.browsers) * 4, self.statuses
        assert set(self.statuses) <= {200, 503}, (
            self.statuses,
            self.auth_log_events(),
        )  # no 500, and no 401: nobody logged out
        for browser in self.browsers:
            assert not browser.logged_out
            forks = {cookie: nexts for cookie, nexts in browser.successors.items() if len(nexts) > 1}
            assert not forks, f"a session forked: {forks}"
            # The latest cookie of every user still works, and each user still has one session.
            answer = requests.post(
                f"{self.auth_url}/api/auth/refresh", headers={"Cookie": f"refresh_token={browser.cookie}"}, timeout=15
            )
            assert answer.status_code == 200, answer.text
            listed = requests.get(
                f"{self.auth_url}/api/auth/sessions",
                headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
                timeout=15,
            )
            assert listed.status_code == 200 and len(listed.json()["sessions"]) == 1, listed.text

    def auth_log_events(self) -> list[str]:
        return [line[:400] for line in self.auth_log.read_text().splitlines() if '"event"' in line or "Error" in line]

    def report(self, topology: str, promoted: float) -> None:
        window = f"from +{min(self.refused_at):.1f} s to +{max(self.refused_at):.1f} s" if self.refused_at else "none"
        print(
            f"\n{topology} failover: replica promoted {promoted:.1f} s after the kill; {self.statuses[503]} "
            f"answers 503 (Retry-After: 1) {window}; {self.statuses[200]} refreshes succeeded"
        )


def start_drill(start_service, tmp_path: Path, keys_dir: Path, redis_url: str) -> Drill:
    auth = start_service("auth_service", auth_env(tmp_path, keys_dir, redis_url), workers=2, threads=4)
    browsers = []
    for _ in range(USERS):
        login = signup_and_login(auth.url)
        browsers.append(Browser(login.refresh_token))
    return Drill(auth.url, auth.log_path, browsers)


def test_sentinel_failover_loses_no_session_and_forks_none(start_service, tmp_path, keys_dir):
    # Two replicas: after the promotion one is left to confirm writes (REDIS_MIN_REPLICAS_ACK=1).
    with RedisSentinelServers(tmp_path / "sentinel", password=TOPOLOGY_PASSWORD, replicas=2) as servers:
        drill = start_drill(start_service, tmp_path, keys_dir, servers.url)

        def fail_over() -> float:
            servers.kill_primary()
            promoted = servers.wait_for_failover()
            # The other replica follows the new primary only after Sentinel reconfigures it and it
            # resyncs; until then no replica can confirm a write and refreshes rightly answer 503.
            servers.wait_until_settled()
            return promoted

        promoted = drill.run(fail_over)
        drill.report("Sentinel", promoted)
        drill.assert_nobody_lost()


def test_cluster_failover_loses_no_session_and_forks_none(start_service, tmp_path, keys_dir):
    with RedisClusterServers(tmp_path / "cluster", password=TOPOLOGY_PASSWORD) as servers:
        drill = start_drill(start_service, tmp_path, keys_dir, servers.url)
        # The primary holding the first user's sessions; its replica takes over, and the killed node,
        # restarted as a supervisor would, rejoins as the shard's replica so writes are confirmed again.
        victim = servers.primary_for(f"{{{drill.browsers[0].cookie[:USER_KEY_DIGITS]}}}")

        def fail_over() -> float:
            servers.kill_primary(victim)
            promoted = servers.wait_for_failover()
            servers.restart(victim)
            return promoted

        promoted = drill.run(fail_over)
        drill.report("Cluster", promoted)
        drill.assert_nobody_lost()


def test_a_rotation_no_replica_has_is_never_handed_out_so_a_failover_cannot_take_it_back(
    launch, start_service, tmp_path, keys_dir
):
    """Deterministic: the replication link is cut, a refresh happens, the primary dies with that
    rotation, the replica takes over. Acknowledged, the new cookie would now be unknown (401, logged
    out); with WAIT it was never acknowledged (503), and the cookie the client kept still works."""
    primary = launch(RedisServer(tmp_path / "primary"))
    replica = launch(RedisServer(tmp_path / "replica"))
    link = launch(TcpProxy(("127.0.0.1", primary.port)))  # replica -> primary
    endpoint = launch(TcpProxy(("127.0.0.1", primary.port)))  # auth -> the current primary (a virtual IP)
    primary.client().config_set("repl-diskless-sync-delay", 0)
    replica.client().replicaof("127.0.0.1", link.port)
    deadline = time.monotonic() + 10
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)
    settings = {"REDIS_MIN_REPLICAS_ACK": "1", "REDIS_REPLICA_ACK_TIMEOUT_MS": "200"}
    auth = start_service("auth_service", {**auth_env(tmp_path, keys_dir, f"redis://{endpoint.address}/0"), **settings})
    cookie = signup_and_login(auth.url).refresh_token  # confirmed by the replica

    link.cut()
    unconfirmed = post_with_cookie(f"{auth.url}/api/auth/refresh", cookie)
    cookie = refresh_cookie_of(unconfirmed) or cookie  # a browser keeps what it was last given

    primary.kill()
    replica.client().replicaof("no", "one")  # promoted, without the rotation it never received
    endpoint.cut()
    endpoint.target = ("127.0.0.1", replica.port)
    endpoint.restore()
    # Replication to nobody cannot be confirmed: this step is about the cookie, not about WAIT.
    auth.stop()
    auth = start_service(
        "auth_service", {**auth_env(tmp_path, keys_dir, f"redis://{endpoint.address}/0"), "REDIS_MIN_REPLICAS_ACK": "0"}
    )
    answer = post_with_cookie(f"{auth.url}/api/auth/refresh", cookie)
    assert answer.status_code == 200, answer.text  # still logged in
    assert unconfirmed.status_code == 503, unconfirmed.text
