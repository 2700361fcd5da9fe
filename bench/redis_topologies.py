"""`make bench-topologies`: refresh throughput on a standalone Redis, behind Sentinel (with and
without waiting for a replica) and on a Redis Cluster, in one run.

Each topology runs on this machine (its servers started here, on loopback); auth runs as in row 3
of `make bench` (gunicorn, 2 sync workers, wrk -t32 -c32, one rotating session per connection).
What WAIT costs is the gap between the rows of one topology; compare figures within one run only.
On these 2 cores the Cluster's six redis-server processes share the cores with auth and wrk.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_bench import CONNECTIONS, RUNS, SECONDS, Bench, Measurement, _login, versions, wrk  # noqa: E402
from bench.progress import Table, emit, progress  # noqa: E402
from tests.support.backends import RedisClusterServers, RedisSentinelServers  # noqa: E402

GOAL_RATIO = 0.8  # a replica-confirmed refresh keeps at least this share of standalone throughput


@contextlib.contextmanager
def topologies(workdir: Path, standalone_url: str) -> Iterator[list[tuple[str, str, dict[str, str]]]]:
    """(name, REDIS_URL, extra settings) per row; the servers live as long as the context."""
    with (
        RedisSentinelServers(workdir / "sentinel", replicas=1) as sentinel,
        RedisClusterServers(workdir / "cluster") as cluster,
    ):
        yield [
            ("standalone, no replica", standalone_url, {}),
            ("Sentinel (1 replica), REDIS_MIN_REPLICAS_ACK=0", sentinel.url, {"REDIS_MIN_REPLICAS_ACK": "0"}),
            ("Sentinel (1 replica), WAIT 1 (default)", sentinel.url, {}),
            (
                "Cluster (3 primaries × 1 replica), REDIS_MIN_REPLICAS_ACK=0",
                cluster.url,
                {"REDIS_MIN_REPLICAS_ACK": "0"},
            ),
            ("Cluster (3 primaries × 1 replica), WAIT 1 (default)", cluster.url, {}),
        ]


def refresh_throughput(bench: Bench, redis_url: str, settings: dict[str, str]) -> Measurement:
    auth = bench.start("auth_service", REDIS_URL=redis_url, **settings)
    try:

        def fresh_sessions() -> dict[str, str]:
            tokens = [
                _login(auth.url, f"t{i}-{uuid.uuid4().hex[:6]}@example.com").cookies["refresh_token"]
                for i in range(CONNECTIONS)
            ]
            return {"REFRESH_TOKENS": ",".join(tokens)}

        return wrk(
            f"{auth.url}/api/auth/refresh",
            threads=CONNECTIONS,
            connections=CONNECTIONS,
            script="refresh.lua",
            env=fresh_sessions,
        )
    finally:
        bench.stop(auth)


def main() -> None:
    emit(versions())
    emit()
    table = Table(
        ("topology", "refresh", "vs standalone", "goal"),
        title=f"`POST /api/auth/refresh` (rotation), {CONNECTIONS} clients, by Redis topology",
    )
    with tempfile.TemporaryDirectory(prefix="bench-topologies-") as tmp:
        bench = Bench(Path(tmp))
        try:
            with topologies(Path(tmp), bench.redis.url) as cases:
                baseline: Measurement | None = None
                for number, (name, url, settings) in enumerate(cases, 1):
                    progress(f"[{number}/{len(cases)}] {name}: {RUNS} × {SECONDS} s ...")
                    measured = refresh_throughput(bench, url, settings)
                    baseline = baseline or measured
                    ratio = measured.rps / baseline.rps
                    goal = "1.00× (baseline)" if measured is baseline else f"≥ {GOAL_RATIO:.2f}×"
                    failures = f" ⚠ non-2xx: {measured.non_2xx}" if measured.non_2xx else ""
                    table.row(
                        (
                            name,
                            f"{measured.rps:,.0f} req/s (p50 {measured.p50_ms:.1f} ms, p99 {measured.p99_ms:.1f} ms)"
                            + failures,
                            f"{ratio:.2f}×",
                            goal,
                        )
                    )
        finally:
            bench.close()


if __name__ == "__main__":
    main()
