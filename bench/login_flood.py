"""`make bench-flood` (row 8 of `make bench`): refresh latency alone and under a login flood, same run.

Auth runs as `make run` serves it: gunicorn gthread 2 workers × 4 threads, argon2id at its production
cost (t=3, m=64 MiB, p=4), admission control at its defaults. Refreshes come from wrk -t32 -c32 with
bench/wrk/refresh.lua and fresh sessions (as row 3); the flood is a second wrk, 32 connections posting
wrong passwords for many unknown accounts from many addresses (bench/wrk/login_flood.lua) straight at
auth. Alone and flood runs alternate, BENCH_RUNS of each, BENCH_SECONDS long; figures are medians.
Then the same with admission control effectively off, to show what it buys. The only setting that
differs from `make run` is TRUSTED_PROXY_ADDRESSES=127.0.0.1: wrk's X-Forwarded-For is believed,
so the flood comes from many addresses and the per-address throttle does not simply stop it.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from auth_service.keys import init_keys  # noqa: E402
from bench.progress import Table, emit, progress  # noqa: E402
from tests.support.backends import RedisServer  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CLIENTS = 32  # refreshing clients, one session each; and, separately, flooding connections
FLOOD_THREADS = 4
RAMP_SECONDS = 1  # the flood runs this long before the refreshes start, and stops after them
WRK = REPO / "bench" / "wrk"
PASSWORD = "benchmark password"
GOAL = 2.0  # refresh p99 under the flood within this multiple of its p99 alone
ADMISSION_OFF = {"PASSWORD_HASH_CONCURRENCY": "64", "PASSWORD_HASH_QUEUE": "64"}


@dataclass
class Refreshes:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    timeouts: int = 0  # requests unanswered within wrk's 10 s: a starved refresh is not in the percentiles


@dataclass
class Result:
    alone: Refreshes
    flooded: Refreshes
    flood: Counter[int]  # the flood's answers by status, summed over its runs
    flood_seconds: float

    @property
    def ratio(self) -> float:
        return self.flooded.p99_ms / self.alone.p99_ms


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _wrk_command(url: str, script: str, *, threads: int, connections: int, seconds: int) -> list[str]:
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(WRK / script),
        url,
    ]


def _refreshes(output: str) -> Refreshes:
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if errors and sum(map(int, errors.groups()[:3])):
        progress(f"   wrk: {errors.group(0)}")
    timeouts = re.search(r"timeout (\d+)", output)
    if float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)) == 0:  # nothing answered: no percentiles
        return Refreshes(0.0, math.inf, math.inf, 0, int(timeouts.group(1)) if timeouts else 0)
    return Refreshes(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=_ms(re.search(r"\s50%\s+(\S+)", output).group(1)),
        p99_ms=_ms(re.search(r"\s99%\s+(\S+)", output).group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        timeouts=int(timeouts.group(1)) if timeouts else 0,
    )


def _median(runs: list[Refreshes]) -> Refreshes:
    return Refreshes(
        *(statistics.median(getattr(r, f) for r in runs) for f in ("rps", "p50_ms", "p99_ms")),
        non_2xx=max(r.non_2xx for r in runs),
        timeouts=max(r.timeouts for r in runs),
    )


def _post(url: str, body: dict[str, str]) -> requests.Response:
    """POST, waiting out a 503 from admission control (the leftovers of a flood may still be hashing)."""
    for _ in range(60):
        response = requests.post(url, json=body, timeout=60)
        if response.status_code != 503:
            return response
        time.sleep(int(response.headers.get("Retry-After", "1")))
    raise RuntimeError(f"{url} kept answering 503")


class Flood:
    """A running auth and its users: measures refreshes alone and under the login flood."""

    def __init__(self, workdir: Path, redis: RedisServer, name: str, **settings: str) -> None:
        env = {
            "APP_ENV": "production",
            "SIGNING_KEY_PATH": str(workdir / "keys" / "signing.pem"),
            "JWKS_PATH": str(workdir / "keys" / "jwks.json"),
            "REDIS_URL": redis.url,
            "REDIS_PREFIX": f"{name}:",
            "AUTH_DATABASE_URL": f"sqlite:///{workdir}/{name}.db",
            "LOG_LEVEL": "WARNING",
            "TRUSTED_PROXY_HOPS": "1",
            "TRUSTED_PROXY_ADDRESSES": "127.0.0.1",
            **settings,
        }
        self.auth = ServiceProcess("auth_service", env, workdir, workers=2, threads=4, worker_class="gthread")
        self.emails = [f"r{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(CLIENTS)]

    def __enter__(self) -> Flood:
        self.auth.start(timeout=60)
        for email in self.emails:
            signup = {"email": email, "password": PASSWORD, "name": "Bench"}
            assert _post(f"{self.auth.url}/api/auth/signup", signup).status_code == 201
        return self

    def __exit__(self, *_: object) -> None:
        self.auth.stop()

    def _sessions(self) -> dict[str, str]:
        """One new session per refreshing client: refresh.lua rotates them, so each run needs new ones."""
        tokens = []
        for email in self.emails:
            login = _post(f"{self.auth.url}/api/auth/login", {"email": email, "password": PASSWORD})
            tokens.append(login.cookies["refresh_token"])
        return {"REFRESH_TOKENS": ",".join(tokens)}

    def refreshes(self) -> Refreshes:
        command = _wrk_command(
            f"{self.auth.url}/api/auth/refresh", "refresh.lua", threads=CLIENTS, connections=CLIENTS, seconds=SECONDS
        )
        out = subprocess.run(
            command, capture_output=True, text=True, check=True, env={**os.environ, **self._sessions()}
        ).stdout
        return _refreshes(out)

    def refreshes_under_flood(self) -> tuple[Refreshes, Counter[int]]:
        env = {**os.environ, **self._sessions()}  # before the flood starts: these logins are not shed
        flood = subprocess.Popen(
            _wrk_command(
                f"{self.auth.url}/api/auth/login",
                "login_flood.lua",
                threads=FLOOD_THREADS,
                connections=CLIENTS,
                seconds=SECONDS + 2 * RAMP_SECONDS,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            time.sleep(RAMP_SECONDS)
            command = _wrk_command(
                f"{self.auth.url}/api/auth/refresh",
                "refresh.lua",
                threads=CLIENTS,
                connections=CLIENTS,
                seconds=SECONDS,
            )
            refreshed = _refreshes(subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout)
            out, _ = flood.communicate(timeout=SECONDS + 60)
        finally:
            if flood.poll() is None:
                flood.kill()
                flood.wait()
        statuses = Counter({int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", out, re.MULTILINE)})
        return refreshed, statuses

    def measure(self, label: str) -> Result:
        alone: list[Refreshes] = []
        flooded: list[Refreshes] = []
        statuses: Counter[int] = Counter()
        for run in range(1, RUNS + 1):
            progress(f"8. {label}, run {run}/{RUNS}: {CLIENTS} new sessions, refreshes alone for {SECONDS} s")
            alone.append(self.refreshes())
            progress(f"8. {label}, run {run}/{RUNS}: alone {_figures(alone[-1])}")
            progress(
                f"8. {label}, run {run}/{RUNS}: {CLIENTS} new sessions, refreshes for {SECONDS} s "
                f"under {CLIENTS} clients flooding logins"
            )
            refreshed, answered = self.refreshes_under_flood()
            flooded.append(refreshed)
            statuses += answered
            progress(f"8. {label}, run {run}/{RUNS}: under the flood {_figures(refreshed)}; flood {_counts(answered)}")
        return Result(_median(alone), _median(flooded), statuses, RUNS * (SECONDS + 2 * RAMP_SECONDS))


def _figures(measured: Refreshes) -> str:
    if measured.rps == 0:
        text = "no refresh answered"
    else:
        text = f"{measured.rps:,.0f} req/s (p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms)"
    text += f" ⚠ non-2xx: {measured.non_2xx}" if measured.non_2xx else ""
    return text + (f" ⚠ {measured.timeouts} unanswered after 10 s" if measured.timeouts else "")


def _counts(statuses: Counter[int]) -> str:
    named = {401: "401 wrong password", 503: "503 shed", 429: "429 throttled"}
    parts = [f"{statuses[s]:,} {named[s]}" for s in (401, 503, 429) if statuses[s]]
    others = sum(n for s, n in statuses.items() if s not in named)
    return ", ".join(parts + ([f"{others:,} other"] if others else [])) or "no answers"


def rows() -> list[tuple[str, str, str, str]]:
    """Row 8 of the bench table: admission control at its defaults, then effectively off."""
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        workdir = Path(tmp)
        init_keys(workdir / "keys")
        redis = RedisServer(workdir / "redis").start()
        try:
            progress("8. login flood: starting auth (gthread 2×4, argon2id t=3 m=64 MiB p=4, admission defaults)")
            with Flood(workdir, redis, "admitted") as flood:
                admitted = flood.measure("admission defaults")
            progress("8. login flood: restarting auth with admission control off " + str(ADMISSION_OFF))
            with Flood(workdir, redis, "unbounded", **ADMISSION_OFF) as flood:
                unbounded = flood.measure("admission off")
        finally:
            redis.stop()

    def row(what: str, result: Result, target: str) -> tuple[str, str, str, str]:
        per_second = {s: n / result.flood_seconds for s, n in result.flood.items()}
        flood = ", ".join(
            f"{rate:,.0f}/s {'401' if s == 401 else '503 shed' if s == 503 else s}"
            for s, rate in sorted(per_second.items())
        )
        return (
            what,
            f"alone {_figures(result.alone)}; under the flood {_figures(result.flooded)}; "
            f"flood answered {_counts(result.flood)} ({flood})",
            f"p99 {result.ratio:.2f}×" if math.isfinite(result.ratio) else "p99 ∞ (starved)",
            target,
        )

    return [
        row(
            f"8. `POST /api/auth/refresh` p99 under a login flood ({CLIENTS} clients at auth's login, wrong "
            f"passwords, many addresses) vs alone, gthread 2×4, argon2id production cost, admission defaults",
            admitted,
            f"≤ {GOAL:g}×",
        ),
        row(
            "   same, admission control off (`PASSWORD_HASH_CONCURRENCY=64`, `PASSWORD_HASH_QUEUE=64`)",
            unbounded,
            "",
        ),
    ]


def main() -> None:
    """`make bench-flood`: row 8 alone, as a Markdown table (`make bench` runs it as its row 8)."""
    emit(f"BENCH_SECONDS={SECONDS}, BENCH_RUNS={RUNS}; {os.cpu_count()} cores; medians of the runs.")
    emit()
    table = Table(("measurement", "result", "ratio", "target"), align=("---", "---", "---:", "---"))
    for cells in rows():
        table.row(cells)


if __name__ == "__main__":
    main()
