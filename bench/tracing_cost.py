"""What tracing costs on the hot path: `GET /api/profiles/me` direct, 2 sync workers, under wrk.

Three profile services side by side: tracing off (`OTEL_SDK_DISABLED=true`), on with the exporter off
(the default), and on exporting every span (to a port where nothing listens, with a batch delay longer
than the run, so export attempts do not count). For each it reports wrk's throughput and the CPU time
its workers spent per request (from /proc), which holds steady when other work shares the cores and
wrk's figures do not. Runs alternate in order; medians of TRACING_RUNS (default 4) runs of
BENCH_SECONDS (default 5). `.venv/bin/python bench/tracing_cost.py`
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_bench import SECONDS, Bench, _login, progress, wrk  # noqa: E402

RUNS = int(os.environ.get("TRACING_RUNS", "4"))
TICK = os.sysconf("SC_CLK_TCK")
VARIANTS = {
    "off (OTEL_SDK_DISABLED=true)": {"OTEL_SDK_DISABLED": "true"},
    "on, exporter off (default)": {},
    "on, exporting every span": {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
        "OTEL_BSP_MAX_QUEUE_SIZE": "100000000",
    },
}


def workers_cpu_seconds(master: int) -> float:
    """User and system CPU time of the children of gunicorn's master so far."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-tracing-") as tmp:
        bench = Bench(Path(tmp))
        try:
            auth = bench.start("auth_service", OTEL_SDK_DISABLED="true")
            login = _login(auth.url, f"bench-{uuid.uuid4().hex[:6]}@example.com")
            bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
            services = {name: bench.start("profile_service", **env) for name, env in VARIANTS.items()}
            for service in services.values():
                requests.get(f"{service.url}/api/profiles/me", headers=bearer).raise_for_status()
            cpu: dict[str, list[float]] = {name: [] for name in services}
            rps: dict[str, list[float]] = {name: [] for name in services}
            for run in range(RUNS):
                progress(f"tracing cost: run {run + 1} of {RUNS}")
                for name in list(services) if run % 2 == 0 else list(reversed(services)):
                    service = services[name]
                    assert service.process is not None
                    before = workers_cpu_seconds(service.process.pid)
                    measured = wrk(f"{service.url}/api/profiles/me", headers=bearer, runs=1)
                    used = workers_cpu_seconds(service.process.pid) - before
                    cpu[name].append(used / (measured.rps * SECONDS) * 1e6)
                    rps[name].append(measured.rps)
        finally:
            bench.close()
    off = next(iter(VARIANTS))
    print("| tracing | worker CPU per request | ratio | wrk req/s | ratio |")
    print("|---|---|---|---|---|")
    for name in VARIANTS:
        c, r = statistics.median(cpu[name]), statistics.median(rps[name])
        c_off, r_off = statistics.median(cpu[off]), statistics.median(rps[off])
        print(f"| {name} | {c:,.0f} µs | {c_off / c:.2f}× | {r:,.0f} | {r / r_off:.2f}× |")


if __name__ == "__main__":
    main()
