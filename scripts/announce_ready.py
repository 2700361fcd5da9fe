"""Print one line per component as it becomes healthy, then the URL to open; stay up with the stack."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable

import redis


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own http://127.0.0.1 URLs
        return response.status == 200


# The services answer /readyz; nginx and its exporter have no such page.
READY_PATHS = {"gateway": "healthz", "gateway-metrics": "metrics"}
# Each process's port by name (gateway, auth, or auth-1, auth-2 ... for replicas), from run_stack.py.
ports: dict[str, int] = json.loads(os.environ["READY_PORTS"])
checks: dict[str, Callable[[], object]] = {
    "redis": lambda: redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1).ping(),
    **{
        name: functools.partial(_ready, f"http://127.0.0.1:{port}/{READY_PATHS.get(name, 'readyz')}")
        for name, port in ports.items()
    },
}


def main() -> None:
    pending = dict(checks)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for name, check in list(pending.items()):
            with contextlib.suppress(Exception):  # not up yet
                if check():
                    print(f"{name} is ready", flush=True)
                    del pending[name]
        time.sleep(0.2)
    if pending:
        print(f"still not ready after 120 s: {', '.join(pending)}", flush=True)
    else:
        print(f"the stack is up: open http://localhost:{ports['gateway']}/", flush=True)
    signal.pause()  # honcho stops the whole stack when any process exits


if __name__ == "__main__":
    main()
