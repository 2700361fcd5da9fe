"""`make profile-refresh`: where a refresh spends its CPU, under the load of `make bench` row 3.

Starts a private Redis and auth under gunicorn (sync, 2 workers) as the bench does, drives
`POST /api/auth/refresh` with wrk (one rotating session per connection, bench/wrk/refresh.lua), and
samples every worker with `py-spy record --subprocesses` twice in a row: once into a flame graph
(var/profile/refresh.svg), once into raw collapsed stacks (var/profile/refresh.raw) from which it
computes the top frames (var/profile/refresh.md, also printed): by own time (the frame on top of the
stack) and by total time (the frame anywhere in the stack). Idle time (waiting for Redis or the
client) is left out, as py-spy does by default: on 2 shared cores the CPU is what limits a refresh.

PROFILE_SECONDS (default 10) is the length of each recording; PROFILE_TOP (default 25) the rows.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.http_bench import CONNECTIONS, WRK, Bench, _fresh_sessions  # noqa: E402
from bench.progress import emit, progress  # noqa: E402

SECONDS = int(os.environ.get("PROFILE_SECONDS", "10"))
TOP = int(os.environ.get("PROFILE_TOP", "25"))
OUT = REPO / "var" / "profile"
PY_SPY = Path(sys.executable).with_name("py-spy")
# A py-spy frame: `function (path/to/file.py:line)`; the line is dropped so one function is one row.
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    if path.startswith(str(REPO)):
        path = path[len(str(REPO)) + 1 :]
    return f"{match['function']} ({path})"


def top_frames(raw: str, top: int = TOP) -> tuple[int, list[tuple[str, int, int]]]:
    """From py-spy's raw collapsed stacks (`frame;frame;... count` a line): the number of samples and
    the `top` functions by own samples, each with (name, own samples, total samples)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for entry in raw.splitlines():
        stack, _, count = entry.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # The first frames name the process (and thread), not code: `process 123:"gunicorn: worker ..."`.
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += int(count)
        own[frames[-1]] += int(count)
        for name in set(frames):
            total[name] += int(count)
    ranked = sorted(own, key=lambda name: (-own[name], name))[:top]
    by_total = sorted((n for n in total if total[n] < 0.9 * samples), key=lambda n: (-total[n], n))[:top]
    rows = [(name, own[name], total[name]) for name in ranked]
    rows += [(name, own[name], total[name]) for name in by_total if name not in ranked]
    return samples, rows


def summary(raw: str, top: int = TOP) -> str:
    samples, rows = top_frames(raw, top)
    lines = [
        f"py-spy, {samples:,} samples of the auth workers (idle left out); own: on top of the stack, "
        "total: anywhere in it.",
        "",
        "| function (file) | own | total |",
        "|---|---:|---:|",
    ]
    for name, own, total in rows[:top]:
        lines.append(f"| `{name}` | {100 * own / samples:.1f}% | {100 * total / samples:.1f}% |")
    lines += [
        "",
        "By total (the work a frame and what it calls take; the server loop under every sample left out):",
        "",
        "| function (file) | total |",
        "|---|---:|",
    ]
    # The server's own frames (gunicorn's loop, the worker) are under every sample: left out here.
    inner = [row for row in rows if row[2] < 0.9 * samples]
    for name, _, total in sorted(inner, key=lambda row: -row[2])[:top]:
        lines.append(f"| `{name}` | {100 * total / samples:.1f}% |")
    return "\n".join(lines) + "\n"


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes (and their reaped children's, which is none here), in seconds."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks


def cpu_per_request(bench: Bench, auth_pid: int, url: str) -> str:
    """CPU µs per request by process (auth's workers, Redis, wrk), `GET /healthz` against a refresh:
    where the difference between them goes, including what a profile of Python cannot see."""
    assert bench.redis.process is not None
    workers = _children(auth_pid)
    lines = [
        "CPU per request by process, µs (user + system, from /proc):",
        "",
        "| endpoint | req/s | auth workers | Redis | wrk | all |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, path, script, env in (
        ("`GET /healthz`", "/healthz", [], {}),
        ("`POST /api/auth/refresh`", "/api/auth/refresh", ["-s", str(WRK / "refresh.lua")], _fresh_sessions(url)),
    ):
        progress(f"profile: CPU per request of {name}, {SECONDS} s")
        command = ["wrk", f"-t{CONNECTIONS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", *script, f"{url}{path}"]
        run = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True)
        groups = {"workers": workers, "redis": [bench.redis.process.pid]}
        before = {group: _cpu_seconds(pids) for group, pids in groups.items()}
        wrk_before = _children_cpu()
        out, _ = run.communicate(timeout=SECONDS + 30)
        wrk_cpu = _children_cpu() - wrk_before
        after = {group: _cpu_seconds(pids) for group, pids in groups.items()}
        requests_done = int(re.search(r"(\d+) requests in", out)[1])
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
        costs = [1e6 * (after[group] - before[group]) / requests_done for group in groups]
        costs.append(1e6 * wrk_cpu / requests_done)
        lines.append(
            f"| {name} | {rate:,.0f} | " + " | ".join(f"{cost:,.0f}" for cost in costs) + f" | {sum(costs):,.0f} |"
        )
    return "\n".join(lines) + "\n"


def _children_cpu() -> float:
    """CPU of this process's children that have ended and been waited for (wrk, once it is done)."""
    times = os.times()
    return times.children_user + times.children_system


def record(pid: int, output: Path, fmt: str) -> None:
    command = [str(PY_SPY), "record", "--subprocesses", "--pid", str(pid), "--duration", str(SECONDS)]
    command += ["--rate", "250", "--format", fmt, "--output", str(output), "--nonblocking"]
    subprocess.run(command, check=True, capture_output=True, text=True)


def main() -> None:
    if not PY_SPY.exists():
        raise SystemExit(f"{PY_SPY} is missing: `make install` installs py-spy (the dev extra)")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        bench = Bench(Path(tmp))
        try:
            auth = bench.service("auth_service")
            assert auth.process is not None
            progress(f"profile: {CONNECTIONS} new sessions; wrk drives refreshes for {2 * SECONDS + 4} s")
            load = subprocess.Popen(
                [
                    "wrk",
                    f"-t{CONNECTIONS}",
                    f"-c{CONNECTIONS}",
                    f"-d{2 * SECONDS + 4}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(WRK / "refresh.lua"),
                    f"{auth.url}/api/auth/refresh",
                ],
                env={**os.environ, **_fresh_sessions(auth.url)},
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                progress(f"profile: py-spy → {OUT / 'refresh.svg'} ({SECONDS} s)")
                record(auth.process.pid, OUT / "refresh.svg", "flamegraph")
                progress(f"profile: py-spy → {OUT / 'refresh.raw'} ({SECONDS} s)")
                record(auth.process.pid, OUT / "refresh.raw", "raw")
            finally:
                out, _ = load.communicate(timeout=60)
            rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
            non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            progress(
                f"profile: wrk {float(rate[1]) if rate else 0:,.0f} req/s under py-spy, "
                f"non-2xx {non_2xx[1] if non_2xx else 0}"
            )
            costs = cpu_per_request(bench, auth.process.pid, auth.url)
        finally:
            bench.close()
    text = summary((OUT / "refresh.raw").read_text()) + "\n" + costs
    (OUT / "refresh.md").write_text(text)
    emit(text)
    emit(f"flame graph: {OUT / 'refresh.svg'}; top frames: {OUT / 'refresh.md'}")


if __name__ == "__main__":
    main()
