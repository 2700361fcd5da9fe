"""Print one line per component as it becomes healthy, then the URL to open; stay up with the stack."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.request

import redis

ports = {
    name: os.environ.get(f"{name}_PORT", default)
    for name, default in (("GATEWAY", "8080"), ("AUTH", "8001"), ("PROFILE", "8002"), ("BOARD", "8003"))
}
checks = {
    "redis": lambda: redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1).ping(),
    "auth": lambda: _ready(f"http://127.0.0.1:{ports['AUTH']}/readyz"),
    "profile": lambda: _ready(f"http://127.0.0.1:{ports['PROFILE']}/readyz"),
    "board": lambda: _ready(f"http://127.0.0.1:{ports['BOARD']}/readyz"),
    "gateway": lambda: _ready(f"http://127.0.0.1:{ports['GATEWAY']}/healthz"),
}


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own http://127.0.0.1 URLs
        return response.status == 200


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
        print(f"the stack is up: open http://localhost:{ports['GATEWAY']}/", flush=True)
    signal.pause()  # honcho stops the whole stack when any process exits


if __name__ == "__main__":
    main()
