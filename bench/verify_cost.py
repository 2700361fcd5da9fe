"""What access-token verification adds to a request, with and without the verified-token cache.

Run: make bench-verify   (prints a Markdown table; median of several rounds, µs per operation)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import jwt

from auth_service.keys import init_keys
from bench.progress import Table, progress
from shared.access_tokens import AccessTokenVerifier, JwksKeys
from tests.support.tokens import AUDIENCE, ISSUER, TokenFactory

ROUNDS = 7
TOKENS = 2000


def _median_us(run, count: int) -> float:
    samples = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) / count * 1e6)
    return statistics.median(samples)


def main() -> None:
    directory = Path(tempfile.mkdtemp())
    init_keys(directory)
    factory = TokenFactory(directory / "signing.pem")
    keys = JwksKeys(path=directory / "jwks.json")
    public_key = factory.private_key.public_key()
    batches = [[factory.make() for _ in range(TOKENS)] for _ in range(ROUNDS)]
    one_token = factory.make()

    def pyjwt_decode():
        for token in batches[0]:
            jwt.decode(token, public_key, algorithms=[factory.algorithm], audience=AUDIENCE, issuer=ISSUER)

    fresh_batches = iter(batches)

    def verifier_first_sight():
        # A new verifier per round and a new token per call: every verify does the signature check.
        verifier = AccessTokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
        for token in next(fresh_batches):
            verifier.verify(token)

    warm = AccessTokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    warm.verify(one_token)

    def verifier_cached():
        for _ in range(TOKENS):
            warm.verify(one_token)

    table = Table(("verification", "µs per call"), align=("---", "---:"))
    for label, measure in (
        (f"PyJWT `jwt.decode`, {factory.algorithm}, key object loaded once", pyjwt_decode),
        ("our verifier, first sight of a token (signature + claims)", verifier_first_sight),
        ("our verifier, the same token again (cache hit, `exp` re-checked)", verifier_cached),
    ):
        progress(f"{label}: {ROUNDS} rounds of {TOKENS}")
        table.row((label, f"{_median_us(measure, TOKENS):,.1f}"))


if __name__ == "__main__":
    main()
