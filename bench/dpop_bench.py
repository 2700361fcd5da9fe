"""`make bench-dpop`: what DPoP (RFC 9449) costs. Refresh throughput of DPoP-bound sessions (a proof
per request) against unbound ones, in the same run (goal ≥ 0.8×), and the per-request cost of
ACCESS_TOKEN_BINDING=dpop at profile (`Authorization: DPoP` plus a proof) against Bearer.

wrk cannot sign ES256, so every proof is signed here beforehand, each with its own `jti` and for its
one request, into one file per wrk thread (bench/wrk/refresh.lua and dpop_get.lua read them); the
iat window (60 s) is far longer than a run. The two sides alternate in pairs and the ratio is the
median of the pairs' ratios, so a change in the shared machine's load falls on both. Also printed:
one proof check in-process (no HTTP), the floor of what a request pays. Uses `make bench`'s
machinery (bench/http_bench.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_bench import (  # noqa: E402
    CONNECTIONS,
    PASSWORD,
    RUNS,
    SECONDS,
    Bench,
    Measurement,
    _median,
    paired_line,
    refresh_run,
    wrk,
)
from bench.progress import Table, emit, progress  # noqa: E402
from shared.dpop import ProofVerifier  # noqa: E402
from tests.support.dpop import DpopKey  # noqa: E402

# Proofs per wrk thread: more than a run can use (a shortfall shows as non-2xx answers).
REFRESH_PROOFS = int(os.environ.get("BENCH_DPOP_REFRESH_PROOFS", str(300 * SECONDS)))
GET_PROOFS = int(os.environ.get("BENCH_DPOP_GET_PROOFS", str(1500 * SECONDS)))


def _bound_sessions(auth_url: str, proofs_dir: Path) -> dict[str, str]:
    """One new bound session per client, and a file of refresh proofs of its key per client."""
    proofs_dir.mkdir(parents=True, exist_ok=True)
    tokens = []
    for n in range(1, CONNECTIONS + 1):
        key = DpopKey()
        email = f"d{n}-{uuid.uuid4().hex[:6]}@example.com"
        requests.post(f"{auth_url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Bench"})
        login = requests.post(
            f"{auth_url}/api/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"DPoP": key.proof("POST", "/api/auth/login")},
        )
        login.raise_for_status()
        tokens.append(login.cookies["refresh_token"])
        lines = (key.proof("POST", "/api/auth/refresh") for _ in range(REFRESH_PROOFS))
        (proofs_dir / f"{n}.txt").write_text("\n".join(lines) + "\n")
    return {"REFRESH_TOKENS": ",".join(tokens), "DPOP_PROOFS_DIR": str(proofs_dir)}


def _get_proofs(key: DpopKey, access_token: str, path: str, proofs_dir: Path, threads: int) -> dict[str, str]:
    proofs_dir.mkdir(parents=True, exist_ok=True)
    for n in range(1, threads + 1):
        lines = (key.proof("GET", path, access_token=access_token) for _ in range(GET_PROOFS))
        (proofs_dir / f"{n}.txt").write_text("\n".join(lines) + "\n")
    return {"DPOP_PROOFS_DIR": str(proofs_dir), "ACCESS_TOKEN": access_token}


def _verify_cost(samples: int = 2000) -> float:
    """Microseconds for one proof check in-process (parse, key, signature, claims, in-memory jti)."""
    key = DpopKey()
    verifier = ProofVerifier(public_origin="http://localhost:8080")
    proofs = [key.proof("GET", "/api/profiles/me", access_token="t") for _ in range(samples)]
    start = time.perf_counter()
    for proof in proofs:
        verifier.verify(proof, method="GET", path="/api/profiles/me", access_token="t")
    return (time.perf_counter() - start) / samples * 1e6


def main() -> None:
    emit(
        f"DPoP bench: wrk -t2 -c{CONNECTIONS} (refresh: -t{CONNECTIONS}) on the same cores, runs alternating "
        f"in {RUNS} pairs of {SECONDS} s, auth and profile under gunicorn sync 2 workers"
    )
    emit()
    table = Table(("measurement", "result", "ratio", "target"), align=("---", "---", "---:", "---"))
    with tempfile.TemporaryDirectory(prefix="bench-dpop-") as tmp:
        bench = Bench(Path(tmp))
        try:
            auth = bench.start("auth_service", ACCESS_TOKEN_BINDING="dpop")
            unbound_runs: list[Measurement] = []
            bound_runs: list[Measurement] = []
            for run in range(1, RUNS + 1):
                progress(f"refresh run {run}/{RUNS}: unbound sessions, {SECONDS} s")
                unbound_runs.append(refresh_run(auth.url))
                progress(f"refresh run {run}/{RUNS}: bound sessions (signing proofs first), {SECONDS} s")
                proofs_dir = Path(tmp) / f"refresh-proofs-{run}"
                bound_runs.append(refresh_run(auth.url, sessions=lambda url, dir=proofs_dir: _bound_sessions(url, dir)))
            table.row(
                paired_line(
                    f"`POST /api/auth/refresh`, DPoP-bound (a proof each) vs unbound, {CONNECTIONS} clients",
                    bound_runs,
                    unbound_runs,
                    "≥ 0.8×",
                )
            )

            # The access token's binding at profile: DPoP + proof vs Bearer, same user, same process.
            key = DpopKey()
            email = f"p-{uuid.uuid4().hex[:6]}@example.com"
            requests.post(f"{auth.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "P"})
            credentials = {"email": email, "password": PASSWORD}
            login = requests.post(
                f"{auth.url}/api/auth/login", json=credentials, headers={"DPoP": key.proof("POST", "/api/auth/login")}
            )
            assert login.json()["token_type"] == "DPoP"
            bound_token = login.json()["access_token"]
            bearer_token = requests.post(f"{auth.url}/api/auth/login", json=credentials).json()["access_token"]
            profile = bench.start("profile_service")
            path = "/api/profiles/me"
            requests.get(f"{profile.url}{path}", headers={"Authorization": f"Bearer {bearer_token}"}).raise_for_status()
            bearer_get: list[Measurement] = []
            dpop_get: list[Measurement] = []
            for run in range(1, RUNS + 1):
                progress(f"profile run {run}/{RUNS}: Bearer, {SECONDS} s")
                bearer_get.append(
                    wrk(
                        f"{profile.url}{path}",
                        script="dpop_get.lua",  # the same script, sending the token as Bearer
                        env=lambda: {"ACCESS_TOKEN": bearer_token},
                        runs=1,
                    )
                )
                progress(f"profile run {run}/{RUNS}: DPoP (signing proofs first), {SECONDS} s")
                proofs_dir = Path(tmp) / f"get-proofs-{run}"
                dpop_get.append(
                    wrk(
                        f"{profile.url}{path}",
                        script="dpop_get.lua",
                        env=lambda dir=proofs_dir: _get_proofs(key, bound_token, path, dir, threads=2),
                        runs=1,
                    )
                )
            what, detail, ratio, target = paired_line(
                f"`GET {path}` with ACCESS_TOKEN_BINDING=dpop (DPoP + proof) vs Bearer, direct",
                dpop_get,
                bearer_get,
                "",
            )
            as_bearer, as_dpop = _median(bearer_get), _median(dpop_get)
            extra_us = (1 / as_dpop.rps - 1 / as_bearer.rps) * 2 * 1e6  # 2 workers: CPU time per request
            table.row((what, f"{detail}; ≈ {extra_us:,.0f} µs more per request", ratio, target))
            table.row(("one proof check in-process (ES256), no HTTP", f"{_verify_cost():,.0f} µs", "", ""))
        finally:
            bench.close()


if __name__ == "__main__":
    main()
