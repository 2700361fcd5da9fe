"""`make bench`: the suite's hot paths under wrk on loopback, side by side with what they compare to.

Starts a private Redis, the three services under gunicorn, the gateway and the peer apps; every row is
the median of BENCH_RUNS runs of BENCH_SECONDS each (defaults 3 × 5 s), with wrk on the same cores.
Ratios are measured with sync workers, the steadiest model (gthread pins each keep-alive connection
to the worker that accepted it, which makes direct runs swing); row 6 compares the models; row 7
serves ours and the SimpleJWT peer (bench/peers/simplejwt) with gthread 2 × 4, as `make run` serves auth.
Prints a Markdown table with the machine and versions. Compare ratios within one run, never
absolute figures across machines.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from auth_service.keys import init_keys  # noqa: E402
from bench.peers.simplejwt import peer_env as simplejwt_env  # noqa: E402
from bench.progress import Table, emit, progress  # noqa: E402
from tests.support.backends import POSTGRES_ADMIN_URL, RedisServer, postgres_database  # noqa: E402
from tests.support.processes import ServiceProcess  # noqa: E402
from tests.support.stack import GatewayProcess  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CONNECTIONS = 32
WRK = REPO / "bench" / "wrk"
PASSWORD = "benchmark password"


@dataclass
class Measurement:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _median(runs: list[Measurement]) -> Measurement:
    return Measurement(
        *(statistics.median(getattr(r, f) for r in runs) for f in ("rps", "p50_ms", "p99_ms")),
        non_2xx=max(r.non_2xx for r in runs),
    )


def wrk(
    url: str,
    *,
    threads: int = 2,
    connections: int = CONNECTIONS,
    headers: dict[str, str] | None = None,
    script: str | None = None,
    env: Callable[[], dict[str, str]] | None = None,
    runs: int = RUNS,
) -> Measurement:
    """Median of `runs` wrk runs; `env` is called before each run (e.g. for fresh sessions)."""
    measured = []
    for _ in range(runs):
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{SECONDS}s", "--latency", "--timeout", "10s"]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}"]
        if script:
            command += ["-s", str(WRK / script)]
        out = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, env={**os.environ, **(env() if env else {})}
        ).stdout
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        measured.append(
            Measurement(
                rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                p50_ms=_ms(re.search(r"\s50%\s+(\S+)", out).group(1)),
                p99_ms=_ms(re.search(r"\s99%\s+(\S+)", out).group(1)),
                non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
            )
        )
    return _median(measured)


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        init_keys(workdir / "keys")
        self.redis = RedisServer(workdir / "redis").start()
        self.base_env = {
            "APP_ENV": "production",
            "SIGNING_KEY_PATH": str(workdir / "keys" / "signing.pem"),
            "JWKS_PATH": str(workdir / "keys" / "jwks.json"),
            "REDIS_URL": self.redis.url,
            "LOG_LEVEL": "WARNING",
            "TRUSTED_PROXY_HOPS": "1",
            "TRUSTED_PROXY_ADDRESSES": "127.0.0.2",
            "AUTH_DATABASE_URL": f"sqlite:///{workdir}/auth.db",
            "PROFILE_DATABASE_URL": f"sqlite:///{workdir}/profile.db",
            "BOARD_DATABASE_URL": f"sqlite:///{workdir}/board.db",
        }
        self.processes: list = []
        # The sync services several rows share, started by the first row that needs each (see `shared`).
        self.shared: dict[str, ServiceProcess] = {}
        self.memo: dict[str, object] = {}

    def start(self, package: str, *, worker_class: str = "sync", **env: str) -> ServiceProcess:
        threads = 4 if worker_class == "gthread" else 1
        process = ServiceProcess(
            package, {**self.base_env, **env}, self.dir, workers=2, threads=threads, worker_class=worker_class
        ).start()
        self.processes.append(process)
        return process

    def service(self, package: str) -> ServiceProcess:
        """The shared sync instance of `package` (2 workers), started on first use."""
        if package not in self.shared:
            progress(f"   starting {package} (gunicorn sync, 2 workers)")
            self.shared[package] = self.start(package)
        return self.shared[package]

    def login(self) -> tuple[dict[str, str], str]:
        """A Bearer header of one bench user, and its id (one login per bench run)."""
        if "login" not in self.memo:
            login = _login(self.service("auth_service").url, f"bench-{uuid.uuid4().hex[:6]}@example.com")
            self.memo["login"] = (
                {"Authorization": f"Bearer {login.json()['access_token']}"},
                login.json()["user"]["id"],
            )
        return self.memo["login"]  # type: ignore[return-value]

    def stop(self, process) -> None:
        process.stop()
        self.processes.remove(process)
        self.shared = {name: p for name, p in self.shared.items() if p is not process}

    def stop_all(self) -> None:
        for process in list(self.processes):
            self.stop(process)

    def close(self) -> None:
        for process in list(self.processes):
            process.stop()
        self.redis.stop()


def versions() -> str:
    def version(command: list[str]) -> str:
        result = subprocess.run(command, capture_output=True, text=True)
        return (result.stdout + result.stderr).strip().splitlines()[0]

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    packages = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in (
            "gunicorn",
            "flask",
            "pyjwt",
            "cryptography",
            "argon2-cffi",
            "redis",
            "django",
            "djangorestframework",
            "djangorestframework-simplejwt",
        )
    )
    with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=5) as connection:
        [postgres] = connection.execute("SHOW server_version").fetchone()
    return (
        f"Machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}; {packages}; "
        f"{version(['nginx', '-v'])}; {version(['redis-server', '--version'])}; PostgreSQL {postgres.split()[0]}; "
        f"{version(['wrk', '--version'])}. wrk -t2 -c{CONNECTIONS} on the same cores unless noted; "
        f"median of {RUNS} × {SECONDS:g} s."
    )


def _login(auth_url: str, email: str) -> requests.Response:
    requests.post(f"{auth_url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Bench"})
    return requests.post(f"{auth_url}/api/auth/login", json={"email": email, "password": PASSWORD})


def _fresh_sessions(auth_url: str) -> dict[str, str]:
    """One new session per client for refresh.lua: a spent token presented again is theft."""
    tokens = [
        _login(auth_url, f"r{i}-{uuid.uuid4().hex[:6]}@example.com").cookies["refresh_token"]
        for i in range(CONNECTIONS)
    ]
    return {"REFRESH_TOKENS": ",".join(tokens)}


def rotating_run(url: str, script: str, tokens: Callable[[], dict[str, str]]) -> Measurement:
    """One wrk run in which each connection is one client rotating a token of its own (one wrk thread
    per connection); `tokens()` makes fresh ones before the run, as a spent token presented again is
    theft to a rotating server."""
    return wrk(url, threads=CONNECTIONS, connections=CONNECTIONS, script=script, env=tokens, runs=1)


def refresh_run(auth_url: str, sessions: Callable[[str], dict[str, str]] = _fresh_sessions) -> Measurement:
    """One wrk run of `POST /api/auth/refresh`, one fresh session (and rotating token) per client,
    made by `sessions(auth_url)` before the run (bench/wrk/refresh.lua reads what it returns)."""
    return rotating_run(f"{auth_url}/api/auth/refresh", "refresh.lua", lambda: sessions(auth_url))


def _fresh_simplejwt_tokens(env: dict[str, str]) -> dict[str, str]:
    """One new refresh token per client for simplejwt_refresh.lua, recorded as outstanding as its login does."""
    minted = subprocess.run(
        [sys.executable, "-m", "bench.peers.simplejwt", "tokens", str(CONNECTIONS)],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return {"REFRESH_TOKENS": ",".join(minted.stdout.split())}


def _figures(measured: Measurement) -> str:
    return f"{measured.rps:,.0f} req/s (p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms)"


# One line of the table: measurement, result, ratio, target.
Line = tuple[str, str, str, str]


def line(
    what: str,
    ours: Measurement,
    other: Measurement | None = None,
    target: str = "",
    *,
    other_latency: bool = False,
    ratio_value: float | None = None,
) -> Line:
    """`ratio_value` replaces ours/other's throughput ratio, e.g. by the median of paired runs' ratios."""
    if ratio_value is None and other:
        ratio_value = ours.rps / other.rps
    ratio = f"{ratio_value:.2f}×" if ratio_value is not None else ""
    detail = _figures(ours)
    if other:
        detail += f" vs {_figures(other) if other_latency else f'{other.rps:,.0f} req/s'}"
    if ours.non_2xx or (other and other.non_2xx):
        detail += f" ⚠ non-2xx: {ours.non_2xx}/{other.non_2xx if other else 0}"
    return (what, detail, ratio, target)


def paired_line(what: str, ours: list[Measurement], other: list[Measurement], target: str) -> Line:
    """A row whose runs alternated in pairs: each side's median, and the median of the pairs' ratios
    as the ratio (a pair shares the machine's load of its moment)."""
    pairs = len(ours)
    return line(
        f"{what} (ratio: median of {pairs} alternating pair{'s' if pairs != 1 else ''})",
        _median(ours),
        _median(other),
        target,
        ratio_value=statistics.median(o.rps / t.rps for o, t in zip(ours, other, strict=True)),
    )


def _profile_me(bench: Bench) -> Measurement:
    """`GET /api/profiles/me` direct, measured once per bench run (rows 1 and 2 compare with it)."""
    if "authed" not in bench.memo:
        bearer, _ = bench.login()
        profile = bench.service("profile_service")
        requests.get(f"{profile.url}/api/profiles/me", headers=bearer).raise_for_status()
        progress(f"   `GET /api/profiles/me` direct, {RUNS} × {SECONDS} s")
        bench.memo["authed"] = wrk(f"{profile.url}/api/profiles/me", headers=bearer)
    return bench.memo["authed"]  # type: ignore[return-value]


def row_verification(bench: Bench) -> list[Line]:
    """1. verification overhead on the profile service: the public page and the caller's own, runs
    alternating in pairs (whichever runs first on a loaded machine would otherwise look slower)."""
    bearer, user_id = bench.login()
    profile = bench.service("profile_service")
    me = f"{profile.url}/api/profiles/me"
    # The profile exists once its owner has asked for it: before that the public page is a 404.
    requests.get(me, headers=bearer).raise_for_status()
    public_runs: list[Measurement] = []
    authed_runs: list[Measurement] = []
    for run in range(1, RUNS + 1):
        progress(f"1. verification: run {run}/{RUNS}: public profile, then the caller's, {SECONDS} s each")
        public_runs.append(wrk(f"{profile.url}/api/profiles/{user_id}", runs=1))
        authed_runs.append(wrk(me, headers=bearer, runs=1))
    public = _median(public_runs)
    bench.memo["authed"] = _median(authed_runs)  # row 2 compares with it
    lines = [
        paired_line(
            "1. `GET /api/profiles/me` (Bearer) vs `GET /api/profiles/{id}` (public), direct",
            authed_runs,
            public_runs,
            "≥ 0.95×",
        )
    ]
    progress("1. verification: the same with the verified-token cache off")
    uncached = bench.start("profile_service", VERIFIED_TOKEN_CACHE_SIZE="0")
    lines.append(
        line(
            "   same, verified-token cache off (a signature check on every call)",
            wrk(f"{uncached.url}/api/profiles/me", headers=bearer),
            public,
        )
    )
    bench.stop(uncached)
    return lines


def row_gateway(bench: Bench) -> list[Line]:
    """2. gateway overhead."""
    bearer, _ = bench.login()
    auth, profile = bench.service("auth_service"), bench.service("profile_service")
    board = bench.service("board_service")
    authed = _profile_me(bench)
    gateway = GatewayProcess(bench.dir, {"auth": auth.port, "profile": profile.port, "board": board.port}).start()
    bench.processes.append(gateway)
    progress(f"2. gateway: through nginx, {RUNS} × {SECONDS} s")
    through = wrk(f"{gateway.url}/api/profiles/me", headers=bearer)
    bench.stop(gateway)
    return [line("2. `GET /api/profiles/me` through nginx vs direct", through, authed, "≥ 0.90×")]


def row_refresh(bench: Bench) -> list[Line]:
    """3. refresh with rotation, one session per client, vs auth's plain JSON endpoint. The runs come in
    pairs (healthz, then refresh), so a change in the shared machine's load falls on both sides."""
    auth = bench.service("auth_service")
    plain_runs: list[Measurement] = []
    refresh_runs: list[Measurement] = []
    for run in range(1, RUNS + 1):
        progress(f"3. refresh: run {run}/{RUNS}: `GET /healthz`, {SECONDS} s")
        plain_runs.append(wrk(f"{auth.url}/healthz", threads=CONNECTIONS, connections=CONNECTIONS, runs=1))
        progress(f"3. refresh: run {run}/{RUNS}: `POST /api/auth/refresh`, {CONNECTIONS} new sessions, {SECONDS} s")
        refresh_runs.append(refresh_run(auth.url))
        progress(
            f"3. refresh: run {run}/{RUNS}: {refresh_runs[-1].rps / plain_runs[-1].rps:.2f}× "
            f"({refresh_runs[-1].rps:,.0f} vs {plain_runs[-1].rps:,.0f} req/s)"
        )
    return [
        paired_line(
            f"3. `POST /api/auth/refresh` (rotation) vs `GET /healthz` on auth, {CONNECTIONS} clients",
            refresh_runs,
            plain_runs,
            "≥ 0.55×",
        )
    ]


def row_login(bench: Bench) -> list[Line]:
    """4. login latency at the production argon2id parameters, two at a time (2 cores)."""
    auth = bench.service("auth_service")
    email = f"login-{uuid.uuid4().hex[:6]}@example.com"
    _login(auth.url, email)
    progress(f"4. login: 2 clients, {RUNS} × {SECONDS} s")
    logins = wrk(
        f"{auth.url}/api/auth/login",
        threads=2,
        connections=2,
        script="post_json.lua",
        env=lambda: {"BODY": json.dumps({"email": email, "password": PASSWORD})},
    )
    return [
        line(
            "4. `POST /api/auth/login`, argon2id t=3 m=64 MiB p=4, 2 clients",
            logins,
            None,
            f"p50 {logins.p50_ms:.0f} ms, p99 {logins.p99_ms:.0f} ms",
        )
    ]


def row_peer(bench: Bench) -> list[Line]:
    """5. the peer: the same route behind our verifier and behind Flask-JWT-Extended."""
    bearer, _ = bench.login()
    peer_app = bench.start("bench.peers.whoami")
    progress(f"5. who-am-I: ours, {RUNS} × {SECONDS} s")
    ours = wrk(f"{peer_app.url}/ours", headers=bearer)
    progress(f"5. who-am-I: Flask-JWT-Extended, {RUNS} × {SECONDS} s")
    peer = wrk(f"{peer_app.url}/peer", headers=bearer)
    bench.stop(peer_app)
    return [line("5. who-am-I behind `shared` verifier vs Flask-JWT-Extended `@jwt_required()`", ours, peer, "≥ 1.3×")]


def row_worker_models(bench: Bench) -> list[Line]:
    """6. gunicorn worker models, 2 workers each (gthread: 4 threads per worker), through the gateway as
    production traffic arrives; login mixed in for auth, where argon2 blocks."""
    bearer, _ = bench.login()
    bench.stop_all()  # the shared services leave the cores to the one under test
    workloads = {
        "auth_service": ("/api/auth/jwks.json", {}),
        "profile_service": ("/api/profiles/me", bearer),
        "board_service": ("/api/boards?limit=20", {}),
    }
    lines: list[Line] = []
    for package, (path, headers) in workloads.items():
        results = {}
        for model in ("sync", "gthread", "gevent"):
            progress(f"6. worker models: {package} {model}, {RUNS} × {SECONDS} s")
            process = bench.start(package, worker_class=model)
            gateway = GatewayProcess(
                bench.dir / model, dict.fromkeys(("auth", "profile", "board"), process.port)
            ).start()
            results[model] = wrk(f"{gateway.url}{path}", headers=headers)
            gateway.stop()
            bench.stop(process)
        best = max(results, key=lambda m: results[m].rps)
        lines.append(
            (
                f"6. {package} `GET {path}` through nginx, by worker model",
                ", ".join(f"{m} {r.rps:,.0f} (p99 {r.p99_ms:.0f} ms)" for m, r in results.items()),
                f"best: {best}",
                "",
            )
        )
    return lines


def refresh_vs_simplejwt(bench: Bench) -> tuple[Measurement, Measurement]:
    """Refresh with rotation, ours vs SimpleJWT's with its PostgreSQL blacklist, one rotating token per
    client, both under gunicorn gthread 2 workers × 4 threads (`make run`'s model). The runs alternate,
    so a change in the shared machine's load falls on both sides."""
    bench.stop_all()  # the shared sync services leave the cores to these two
    progress("7. refresh vs SimpleJWT: starting auth and the SimpleJWT peer (gthread 2×4, PostgreSQL)")
    auth = bench.start("auth_service", worker_class="gthread")
    ours_runs: list[Measurement] = []
    theirs_runs: list[Measurement] = []
    with postgres_database() as simplejwt_database:
        peer_env = simplejwt_env(bench.dir / "simplejwt", simplejwt_database, PASSWORD)
        simplejwt = bench.start("bench.peers.simplejwt", worker_class="gthread", **peer_env)
        try:
            for run in range(1, RUNS + 1):
                progress(f"7. run {run}/{RUNS}: ours, {CONNECTIONS} new sessions, {SECONDS} s")
                ours_runs.append(refresh_run(auth.url))
                progress(f"7. run {run}/{RUNS}: ours {_figures(ours_runs[-1])}; SimpleJWT, {SECONDS} s")
                theirs_runs.append(
                    rotating_run(
                        f"{simplejwt.url}/api/token/refresh/",
                        "simplejwt_refresh.lua",
                        lambda: _fresh_simplejwt_tokens(peer_env),
                    )
                )
                progress(f"7. run {run}/{RUNS}: SimpleJWT {_figures(theirs_runs[-1])}")
        finally:
            # Before its database is dropped.
            bench.stop(simplejwt)
    bench.stop(auth)
    return _median(ours_runs), _median(theirs_runs)


def row_simplejwt(bench: Bench) -> list[Line]:
    """7. refresh with rotation vs SimpleJWT's, both served as `make run` serves auth."""
    ours, theirs = refresh_vs_simplejwt(bench)
    return [
        line(
            "7. refresh with rotation vs SimpleJWT (`ROTATE_REFRESH_TOKENS` + `BLACKLIST_AFTER_ROTATION`, "
            f"PostgreSQL blacklist), gthread 2×4, {CONNECTIONS} clients",
            ours,
            theirs,
            "≥ 5×; ours also detects reuse and tolerates races, theirs does neither",
            other_latency=True,
        )
    ]


def row_observability(bench: Bench) -> list[Line]:
    """9. the hot path with metrics and tracing on (the defaults; no exporter) vs both off: profile
    twice side by side, runs alternating in pairs."""
    bearer, _ = bench.login()
    progress("9. observability: starting profile twice (gunicorn sync, 2 workers): defaults, and all off")
    observed = bench.start("profile_service")
    bare = bench.start("profile_service", METRICS_ENABLED="false", OTEL_SDK_DISABLED="true")
    on_runs: list[Measurement] = []
    off_runs: list[Measurement] = []
    for run in range(1, RUNS + 1):
        progress(f"9. observability: run {run}/{RUNS}: metrics and tracing off, {SECONDS} s")
        off_runs.append(wrk(f"{bare.url}/api/profiles/me", headers=bearer, runs=1))
        progress(f"9. observability: run {run}/{RUNS}: metrics and tracing on, {SECONDS} s")
        on_runs.append(wrk(f"{observed.url}/api/profiles/me", headers=bearer, runs=1))
        progress(f"9. observability: run {run}/{RUNS}: {on_runs[-1].rps / off_runs[-1].rps:.2f}×")
    bench.stop(observed)
    bench.stop(bare)
    return [
        paired_line(
            "9. `GET /api/profiles/me` (Bearer), direct, with metrics and tracing on (exporter off) vs both off "
            "(`METRICS_ENABLED=false`, `OTEL_SDK_DISABLED=true`)",
            on_runs,
            off_runs,
            "≥ 0.95×",
        )
    ]


def row_login_flood(_bench: Bench) -> list[Line]:
    """8. refresh p50/p99 alone and under a login flood; bench/login_flood.py starts its own auth
    (`make run`'s gthread 2×4 and production argon2id), so `make bench-flood` runs it alone too."""
    from bench.login_flood import rows

    return rows()


# The rows by number, in the order they run: each is one function of the Bench that returns its lines.
ROWS: dict[str, Callable[[Bench], list[Line]]] = {
    "1": row_verification,
    "2": row_gateway,
    "3": row_refresh,
    "4": row_login,
    "5": row_peer,
    "6": row_worker_models,
    "7": row_simplejwt,
    "8": row_login_flood,
    "9": row_observability,
}


def selected_rows(rows: dict[str, Callable[[Bench], list[Line]]]) -> list[str]:
    """BENCH_ROWS (a comma list of row numbers, e.g. `3` or `1,3`) picks rows; unset or empty: all."""
    wanted = [item.strip() for item in os.environ.get("BENCH_ROWS", "").split(",") if item.strip()]
    unknown = [item for item in wanted if item not in rows]
    if unknown:
        raise SystemExit(f"BENCH_ROWS: no row {', '.join(unknown)} (rows: {', '.join(rows)})")
    return [key for key in rows if not wanted or key in wanted]


def main() -> None:
    chosen = selected_rows(ROWS)
    emit(versions())
    emit()
    table = Table(("measurement", "result", "ratio", "target"), align=("---", "---", "---:", "---"))
    table.header()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            for number in chosen:
                for cells in ROWS[number](bench):
                    table.row(cells)
        finally:
            bench.close()


if __name__ == "__main__":
    main()
