"""Measure sign and verify cost of the asymmetric JWT algorithms the auth service could use.

Run: make bench-jwt   (prints a Markdown table; median of several rounds)
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.progress import Table, progress

ROUNDS = 7
OPERATIONS = 2000


def _keys():
    return {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }


def _per_op_us(fn) -> float:
    samples = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(OPERATIONS):
            fn()
        samples.append((time.perf_counter() - start) / OPERATIONS * 1e6)
    return statistics.median(samples)


def main() -> None:
    now = datetime.now(UTC)
    claims = {
        "iss": "http://localhost:8080",
        "aud": "silent-auth",
        "sub": "u" * 32,
        "sid": "s" * 32,
        "jti": "j" * 32,
        "name": "Ada Lovelace",
        "iat": now,
        "exp": now + timedelta(hours=1),
    }
    table = Table(
        ("alg", "sign µs", "verify µs", "verify share of 1 sign + 100 verifies"), align=("---", "---:", "---:", "---:")
    )
    for alg, key in _keys().items():
        progress(f"{alg}: {ROUNDS} rounds of {OPERATIONS} signs, then of {OPERATIONS} verifies")
        public = key.public_key()
        token = jwt.encode(claims, key, algorithm=alg, headers={"typ": "at+jwt", "kid": "k"})
        sign = _per_op_us(lambda key=key, alg=alg: jwt.encode(claims, key, algorithm=alg))
        verify = _per_op_us(
            lambda token=token, public=public, alg=alg: jwt.decode(
                token, public, algorithms=[alg], audience="silent-auth"
            )
        )
        total = sign + 100 * verify
        table.row((alg, f"{sign:,.0f}", f"{verify:,.0f}", f"{100 * verify / total:.0f}% of {total:,.0f} µs"))


if __name__ == "__main__":
    main()
