"""SIGTERM to gunicorn under load: every request it accepted is answered in full, then it exits 0.

"Accepted" is made observable with `Expect: 100-continue`: gunicorn answers `100 Continue` when
a worker has taken the request and is about to run the app, and only then does the client send
the body, slowly, in two parts. So each accepted request is in flight for a measurable time, and
the client knows which requests the server took. A request that was not taken (the connection
refused, or reset while still in the listen backlog) may fail; a taken one must end in a complete
201, and exactly the posts that got a 201 exist afterwards.
"""

from __future__ import annotations

import json
import random
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.faults.conftest import resource_env
from tests.support.backends import postgres_database
from tests.support.processes import ServiceProcess

CLIENTS = 16
GRACEFUL_TIMEOUT = 5.0  # what ServiceProcess passes to gunicorn (--graceful-timeout 5)


@dataclass
class Outcome:
    title: str
    kind: str  # refused | not_taken | answered | broken
    detail: str = ""
    status: int | None = None
    body: dict | None = None
    taken_at: float | None = None
    answered_at: float | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def add(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)

    def of(self, kind: str) -> list[Outcome]:
        with self.lock:
            return [o for o in self.outcomes if o.kind == kind]


def _read_head(sock: socket.socket, buffer: bytearray) -> bytes:
    """Read one response head (up to and including the blank line); b'' when the peer closed first."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    buffer[:] = rest
    return head


def _status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def post_slowly(port: int, token: str, title: str) -> Outcome:
    body = json.dumps({"title": title, "content": "slow " * 2000}).encode()
    head = (
        f"POST /api/boards HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nExpect: 100-continue\r\n"
        f"X-Request-ID: {title}\r\nConnection: close\r\n\r\n"
    ).encode()
    sock = socket.socket()
    sock.settimeout(20)
    with sock:
        try:
            sock.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return Outcome(title, "refused")
        buffer = bytearray()
        try:
            sock.sendall(head)
            interim = _read_head(sock, buffer)
        except (ConnectionResetError, BrokenPipeError) as exc:
            return Outcome(title, "not_taken", repr(exc))
        if not interim:
            return Outcome(title, "not_taken", "closed before 100 Continue")
        if _status_of(interim) != 100:  # a final answer without reading the body
            return Outcome(title, "answered", status=_status_of(interim), detail=interim.decode(errors="replace"))
        taken_at = time.monotonic()
        try:
            half = len(body) // 2
            sock.sendall(body[:half])
            time.sleep(random.uniform(0.05, 0.15))
            sock.sendall(body[half:])
            final = _read_head(sock, buffer)
            if not final:
                return Outcome(title, "broken", "closed without an answer", taken_at=taken_at)
            headers = dict(line.split(b": ", 1) for line in final.split(b"\r\n")[1:])
            length = int(headers[b"Content-Length"])
            while len(buffer) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return Outcome(title, "broken", f"body cut at {len(buffer)} of {length} bytes", taken_at=taken_at)
                buffer += chunk
        except OSError as exc:  # reset or timeout after the server took the request
            return Outcome(title, "broken", repr(exc), taken_at=taken_at)
        return Outcome(
            title,
            "answered",
            status=_status_of(final),
            body=json.loads(bytes(buffer[:length])),
            taken_at=taken_at,
            answered_at=time.monotonic(),
        )


def client(load: Load, port: int, token: str, number: int) -> None:
    for attempt in range(10_000):
        if load.stop.is_set():
            return
        outcome = post_slowly(port, token, f"c{number}-{attempt}")
        load.add(outcome)
        if outcome.kind in ("refused", "not_taken"):
            return  # the server is going away; nothing more to learn from this client


def all_posts(url: str) -> list[dict]:
    posts, cursor = [], None
    while True:
        page = requests.get(
            f"{url}/api/boards", params={"limit": 100, **({"cursor": cursor} if cursor else {})}, timeout=10
        )
        assert page.status_code == 200, page.text
        posts += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return posts


@pytest.mark.parametrize("worker_class", ["gthread", "sync"])
def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(
    tmp_path: Path, keys_dir: Path, tokens, launch, worker_class
):
    with postgres_database() as database:
        env = resource_env(tmp_path, keys_dir, board_db=database)
        if worker_class == "gthread":
            board = ServiceProcess("board_service", env, tmp_path, workers=2, threads=4)
        else:  # gunicorn.conf.py picks the sync worker when GUNICORN_THREADS is 1
            board = ServiceProcess("board_service", {**env, "GUNICORN_THREADS": "1"}, tmp_path, workers=2, threads=1)
        launch(board)
        token = tokens.make(name="Graceful")
        load = Load()
        threads = [
            threading.Thread(target=client, args=(load, board.port, token, n), daemon=True) for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()

        deadline = time.monotonic() + 10
        while len(load.of("answered")) < 2 * CLIENTS and time.monotonic() < deadline:
            time.sleep(0.05)  # warm: every worker is serving
        signalled_at = time.monotonic()
        board.process.send_signal(signal.SIGTERM)
        returncode = board.process.wait(GRACEFUL_TIMEOUT + 10)
        exited_after = time.monotonic() - signalled_at
        for thread in threads:  # with the server gone, every client's next connection is refused
            thread.join(30)
        load.stop.set()
        assert not any(thread.is_alive() for thread in threads)

        log = board.log()
        assert returncode == 0, log
        assert exited_after < GRACEFUL_TIMEOUT, f"took {exited_after:.2f} s: workers had to be killed?\n{log}"
        assert "SIGKILL" not in log and "WORKER TIMEOUT" not in log, log

        broken = load.of("broken")
        assert not broken, f"requests taken by the server but not answered: {broken[:5]}"
        answered = load.of("answered")
        assert {o.status for o in answered} == {201}, [(o.status, o.detail) for o in answered if o.status != 201][:5]
        in_flight = [o for o in answered if o.taken_at < signalled_at < o.answered_at]
        assert in_flight, "no request was in flight when SIGTERM arrived: the test proved nothing"
        late = [o for o in answered if o.taken_at > signalled_at]
        # Every client ended by being turned away at the door (refused, or reset in the listen
        # backlog when the last worker closed the socket), never in the middle of a request.
        assert len(load.of("refused")) + len(load.of("not_taken")) == CLIENTS

        board.start()  # same database: what was answered 201 was really stored, and nothing else
        for outcome in random.sample(answered, min(20, len(answered))):
            stored = requests.get(f"{board.url}/api/boards/{outcome.body['id']}", timeout=10)
            assert stored.status_code == 200 and stored.json()["title"] == outcome.title
        stored_titles = [post["title"] for post in all_posts(board.url)]
        assert sorted(stored_titles) == sorted(o.title for o in answered)
        print(
            f"{worker_class}: {len(answered)} answered ({len(in_flight)} in flight at SIGTERM, {len(late)} taken "
            f"after it), {len(load.of('refused'))} refused, {len(load.of('not_taken'))} not taken; "
            f"exit {exited_after:.2f} s after SIGTERM"
        )
