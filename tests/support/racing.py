"""Race one refresh token against itself: many requests released together by a barrier."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests


def refresh_together(base: str, token: str, racers: int) -> list[requests.Response]:
    """Send `racers` refreshes of `token` released by a barrier over already-open connections."""
    barrier = threading.Barrier(racers)

    def racer(_: int) -> requests.Response:
        http = requests.Session()
        http.get(f"{base}/healthz", timeout=10)  # connect first, so the barrier releases requests, not handshakes
        barrier.wait(timeout=10)
        return http.post(f"{base}/api/auth/refresh", headers={"Cookie": f"refresh_token={token}"}, timeout=10)

    with ThreadPoolExecutor(max_workers=racers) as pool:
        return list(pool.map(racer, range(racers)))  # a racer's exception fails the test here
