"""Ask a service with several gunicorn workers until each worker has answered, told apart by the
`pid` of the JSON access lines in the service's log."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import requests


def _access_lines(log_text: str) -> dict[str, dict]:
    """The access lines of a log (a service's own, or the stack's with honcho's prefixes) by request id."""
    lines = {}
    for line in log_text.splitlines():
        start = line.find('{"ts"')
        if start < 0:
            continue
        try:
            entry = json.loads(line[start:])
        except ValueError:
            continue
        if entry.get("logger") == "access" and entry.get("request_id"):
            lines[entry["request_id"]] = entry
    return lines


def answers_from_every_worker(
    method: str,
    url: str,
    headers: dict[str, str],
    log: Callable[[], str],
    *,
    json_body: object = None,
    workers: int = 2,
    timeout: float = 10,
) -> dict[int, list[requests.Response]]:
    """Send the same request on fresh connections, several at once, until `workers` distinct pids
    have answered; return the answers by pid. Fails when fewer workers answered in time."""
    by_pid: dict[int, list[requests.Response]] = {}
    pending: dict[str, requests.Response] = {}

    def send(_: int) -> tuple[str, requests.Response]:
        request_id = f"probe-{uuid.uuid4().hex}"
        # A new connection each time: a kept-alive one would stay with the worker that accepted it.
        response = requests.request(
            method,
            url,
            json=json_body,
            timeout=10,
            headers={**headers, "X-Request-ID": request_id, "Connection": "close"},
        )
        return request_id, response

    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max_workers=8) as pool:
        while len(by_pid) < workers:
            assert time.monotonic() < deadline, f"only workers {sorted(by_pid)} answered {url}"
            pending.update(pool.map(send, range(16)))
            time.sleep(0.1)  # the access lines reach the log file
            logged = _access_lines(log())
            for request_id in [rid for rid in pending if rid in logged]:
                by_pid.setdefault(logged[request_id]["pid"], []).append(pending.pop(request_id))
    return by_pid
