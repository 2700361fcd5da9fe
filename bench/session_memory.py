"""`make bench-memory`: Redis memory per live session, at 0, 10 and 336 rotations (two weeks of hourly
refreshes), against the goal of 600 bytes.

Sessions are made by auth's own SessionStore on a private redis-server, with a realistic user agent,
email and name; the figure is Redis's `used_memory` growth divided by the number of sessions (each
user with one session, so the user's index is counted too). The row "alternative" measures what
the design rejected: the same sessions plus a 60-byte per-session secret, stored encrypted
(AES-GCM: nonce, 32 bytes, tag; 80 characters of base64 in the session's JSON), which a refresh
token derived from a stored per-session secret would need. The last row is as many new sessions
again, each bound to a browser's DPoP key (its 43-character RFC 7638 thumbprint in the session,
auth_service/dpop.py), measured on their own.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import redis  # noqa: E402

from auth_service.sessions import SessionStore, SessionUser  # noqa: E402
from bench.progress import Table, progress  # noqa: E402
from shared.dpop import jwk_thumbprint  # noqa: E402
from tests.support.backends import RedisServer  # noqa: E402

SESSIONS = int(os.environ.get("BENCH_SESSIONS", "400"))
GOAL_BYTES = 600
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def _jwk() -> dict[str, str]:
    """A P-256 public key as the browser sends it (random coordinates: only the thumbprint is stored)."""
    coordinate = secrets.token_urlsafe(32)
    return {"kty": "EC", "crv": "P-256", "x": coordinate, "y": coordinate[::-1]}


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def main() -> None:
    table = Table(
        ("sessions", "bytes per session", "goal"),
        align=("---", "---:", "---"),
        title=f"Redis memory per live session ({SESSIONS} sessions, one per user, index included)",
    )

    def row(name: str, value: float) -> None:
        table.row((name, f"{value:,.0f}", f"≤ {GOAL_BYTES}"))

    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        server = RedisServer(Path(tmp) / "redis").start()
        try:
            client = redis.Redis.from_url(server.url)
            store = SessionStore(
                client, refresh_key=secrets.token_bytes(32), prefix="auth:", ttl=1209600, reuse_grace=10
            )
            store.create(SessionUser("warm-up", "w@example.com", "W"), USER_AGENT)  # scripts loaded, dicts allocated
            before = used_memory(client)
            progress(f"creating {SESSIONS} sessions ...")
            tokens = []
            for n in range(SESSIONS):
                user = SessionUser(uuid.uuid4().hex, f"person{n}@example.com", f"Person {n}")
                tokens.append(store.create(user, USER_AGENT)[1])
            row("created (0 rotations)", (used_memory(client) - before) / SESSIONS)
            rotations = 0
            for target in (10, 336):
                progress(f"rotating every session to {target} ...")
                while rotations < target:
                    tokens = [store.rotate(token).refresh_token for token in tokens]
                    rotations += 1
                    if rotations % 50 == 0:
                        progress(f"  {rotations}/{target} rotations")
                row(f"after {target} rotations", (used_memory(client) - before) / SESSIONS)
            # The alternative the issue suggested: each session also stores its own secret, encrypted
            # (60 bytes as base64: 80 more characters in its entry of the user's document).
            for key in client.scan_iter(match="auth:u:{*}"):
                if b":ended:" in key:
                    continue
                document = json.loads(client.get(key))
                for entry in document["s"].values():
                    entry.append(secrets.token_urlsafe(60))
                client.set(key, json.dumps(document, separators=(",", ":")), keepttl=True)
            row("alternative: + a 60-byte encrypted per-session secret", (used_memory(client) - before) / SESSIONS)
            bound_before = used_memory(client)
            for n in range(SESSIONS):
                user = SessionUser(uuid.uuid4().hex, f"bound{n}@example.com", f"Bound {n}")
                store.create(user, USER_AGENT, jkt=jwk_thumbprint(_jwk()))
            row("bound to a DPoP key (0 rotations)", (used_memory(client) - bound_before) / SESSIONS)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
