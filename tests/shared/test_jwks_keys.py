"""Keys from a JWKS URL: refetch on unknown kid with a cooldown, rotation, and the file fallback."""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from auth_service.keys import rotate_keys
from shared.access_tokens import AccessTokenVerifier, JwksKeys, TokenError
from tests.support.tokens import AUDIENCE, ISSUER, TokenFactory


class JwksStub:
    """A tiny HTTP server standing in for auth's /.well-known/jwks.json; counts its requests."""

    def __init__(self, jwks: dict) -> None:
        self.jwks = jwks
        self.requests = 0
        self.up = True
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.requests += 1
                if not stub.up:
                    self.send_error(503)
                    return
                body = json.dumps(stub.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval, so that shutdown() returns at once instead of after half a second.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def rotating_keys(tmp_path, keys_dir):
    directory = tmp_path / "keys"
    directory.mkdir()
    for name in ("signing.pem", "jwks.json"):
        (directory / name).write_bytes((keys_dir / name).read_bytes())
    return directory


@pytest.fixture
def stub(rotating_keys):
    server = JwksStub(json.loads((rotating_keys / "jwks.json").read_text()))
    yield server
    server.close()


def _verifier(keys: JwksKeys) -> AccessTokenVerifier:
    return AccessTokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


def test_keys_are_fetched_once_at_start(stub, tokens):
    keys = JwksKeys(url=stub.url, refetch_cooldown=30)
    verifier = _verifier(keys)
    for _ in range(20):
        verifier.verify(tokens.make())
    assert stub.requests == 1


def test_rotation_is_picked_up_after_one_refetch_and_old_tokens_keep_working(stub, rotating_keys, tokens):
    keys = JwksKeys(url=stub.url, refetch_cooldown=0)
    verifier = _verifier(keys)
    old_token = tokens.make()
    assert verifier.verify(old_token)

    rotate_keys(rotating_keys)
    stub.jwks = json.loads((rotating_keys / "jwks.json").read_text())
    new_tokens = TokenFactory(rotating_keys / "signing.pem")
    before = stub.requests
    assert verifier.verify(new_tokens.make()).id
    assert stub.requests == before + 1
    assert verifier.verify(tokens.make()).id  # tokens of the old key are still accepted
    assert verifier.verify(old_token).id


def test_a_burst_of_unknown_kids_fetches_at_most_once_per_cooldown(stub, tokens):
    keys = JwksKeys(url=stub.url, refetch_cooldown=30)
    verifier = _verifier(keys)
    before = stub.requests
    junk = [tokens.make(headers={"kid": secrets.token_urlsafe(16)}) for _ in range(1000)]

    barrier = threading.Barrier(8)

    def attack(batch: list[str]) -> list[str]:
        barrier.wait(timeout=10)  # all eight threads hit the unknown kids at once
        codes = []
        for token in batch:
            with pytest.raises(TokenError) as refused:
                verifier.verify(token)
            codes.append(refused.value.code)
        return codes

    with ThreadPoolExecutor(max_workers=8) as pool:
        # result() re-raises in the test what a thread raised, so a token that passed fails here.
        codes = [code for batch in pool.map(attack, [junk[i::8] for i in range(8)]) for code in batch]
    assert codes == ["invalid_token"] * len(junk)
    assert stub.requests - before <= 1


def test_cached_keys_keep_working_when_the_refetch_fails(stub, tokens):
    keys = JwksKeys(url=stub.url, refetch_cooldown=0)
    verifier = _verifier(keys)
    stub.up = False
    with pytest.raises(TokenError):
        verifier.verify(tokens.make(headers={"kid": "unknown"}))
    assert verifier.verify(tokens.make()).id


def test_a_service_starting_while_auth_is_down_works_from_the_file(stub, rotating_keys, tokens):
    stub.up = False
    keys = JwksKeys(path=rotating_keys / "jwks.json", url=stub.url, refetch_cooldown=30)
    assert len(keys) == 1
    assert _verifier(keys).verify(tokens.make()).id


def test_an_unreachable_url_and_no_file_means_no_keys(tokens):
    keys = JwksKeys(url="http://127.0.0.1:9/jwks.json", refetch_cooldown=30, fetch_timeout=0.5)
    assert len(keys) == 0
    with pytest.raises(TokenError) as failure:
        _verifier(keys).verify(tokens.make())
    assert failure.value.code == "invalid_token"
