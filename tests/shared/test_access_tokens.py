"""The shared verifier against a table of bad tokens, through a real Flask route."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask

from shared.access_tokens import MAX_TOKEN_LENGTH, AccessTokenVerifier, Caller, JwksKeys, TokenError, require_caller
from shared.config import ServiceConfig
from shared.problems import register_error_handlers
from shared.service_context import ServiceContext
from tests.support.tokens import AUDIENCE, ISSUER


def b64(data: bytes | dict) -> str:
    raw = json.dumps(data).encode() if isinstance(data, dict) else data
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def verifier(keys_dir) -> AccessTokenVerifier:
    return AccessTokenVerifier(JwksKeys(path=keys_dir / "jwks.json"), issuer=ISSUER, audience=AUDIENCE, leeway=5)


@pytest.fixture
def client(verifier):
    app = Flask("verifier-test")
    register_error_handlers(app)
    ServiceContext(config=ServiceConfig(jwks_path=None), verifier=verifier).attach(app)

    @app.get("/whoami")
    @require_caller
    def whoami(caller: Caller):
        return {"id": caller.id, "name": caller.name, "sid": caller.session_id}

    return app.test_client()


def call(client, token: str | None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {token}"} if token is not None else {}
    return client.get("/whoami", headers=headers)


def test_a_valid_token_gives_the_caller(client, tokens):
    response = call(client, tokens.make(sub="user-1", name="Ada", sid="s" * 32))
    assert response.status_code == 200
    assert response.json == {"id": "user-1", "name": "Ada", "sid": "s" * 32}


def _hs256_with_public_key(tokens, keys_dir) -> str:
    """The classic algorithm confusion: HMAC keyed with the public key's PEM bytes."""
    public_pem = tokens.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': tokens.kid})}.{b64(tokens.claims())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def _tampered(tokens) -> str:
    header, payload, signature = tokens.make(sub="alice").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "mallory"
    return f"{header}.{b64(claims)}.{signature}"


def _unsigned(tokens) -> str:
    return f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': tokens.kid})}.{b64(tokens.claims())}."


def _other_key(tokens) -> str:
    return tokens.make(key=ec.generate_private_key(ec.SECP256R1()))


def _signed(tokens, payload: bytes, header_alg: str | None = None) -> str:
    """Sign with the real key and algorithm, whatever the header claims."""
    header = {"alg": header_alg or tokens.algorithm, "typ": "at+jwt", "kid": tokens.kid}
    signing_input = f"{b64(header)}.{b64(payload)}"
    signature = jwt.get_algorithm_by_name(tokens.algorithm).sign(signing_input.encode(), tokens.private_key)
    return f"{signing_input}.{b64(signature)}"


def _signed_payload(tokens, payload: bytes) -> str:
    return _signed(tokens, payload)


NOW = int(time.time())


def _without(claim: str):
    def build(tokens):
        return tokens.make(**{claim: None})

    return build


BAD_TOKENS = {
    "alg none": _unsigned,
    "hs256 with the public key": _hs256_with_public_key,
    "tampered payload": _tampered,
    "signature of another key": _other_key,
    "truncated signature": lambda t: t.make()[:-10],
    "unknown kid": lambda t: t.make(headers={"kid": "unknown-key-id"}),
    "kid with path characters": lambda t: t.make(headers={"kid": "../../../../etc/passwd"}),
    "no kid": lambda t: jwt.encode(t.claims(), t.private_key, algorithm=t.algorithm, headers={"typ": "at+jwt"}),
    "jku pointing elsewhere": lambda t: t.make(headers={"jku": "http://127.0.0.1:9/jwks.json"}),
    "embedded jwk": lambda t: t.make(headers={"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
    "x5u header": lambda t: t.make(headers={"x5u": "http://127.0.0.1:9/cert.pem"}),
    "x5c header": lambda t: t.make(headers={"x5c": ["MIIBszCCAVmgAwIBAgIUQ=="]}),
    "crit header": lambda t: t.make(headers={"crit": ["exp"]}),
    "alg not the key's": lambda t: _signed(t, json.dumps(t.claims()).encode(), header_alg="ES512"),
    "RS256 under an EC kid": lambda t: t.make(
        key=rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256"
    ),
    "nbf in the future": lambda t: t.make(nbf=NOW + 3600),
    "iat in the future": lambda t: t.make(iat=NOW + 3600),
    "wrong iss": lambda t: t.make(iss="http://evil.example"),
    "wrong aud": lambda t: t.make(aud="another-api"),
    "typ JWT": lambda t: t.make(headers={"typ": "JWT"}),
    "no typ": lambda t: jwt.encode(
        t.claims(), t.private_key, algorithm=t.algorithm, headers={"kid": t.kid, "typ": None}
    ),
    "typ refresh": lambda t: t.make(headers={"typ": "rt+jwt"}),
    "sub not a string": lambda t: t.make(sub=123),
    "empty sid": lambda t: t.make(sid=""),
    "exp not a number": lambda t: _signed_payload(t, json.dumps({**t.claims(), "exp": "tomorrow"}).encode()),
    "payload not JSON": lambda t: _signed_payload(t, b"not json at all"),
    "payload a JSON list": lambda t: _signed_payload(t, b"[1, 2, 3]"),
    "header a JSON list": lambda t: b64(b'["at+jwt"]') + "." + t.make().split(".", 1)[1],
    "header not JSON": lambda t: "bm90IGpzb24." + t.make().split(".", 1)[1],
    "header not base64": lambda t: "%%%." + t.make().split(".", 1)[1],
    "three junk segments": lambda t: "abc.def.ghi",
    "one segment": lambda t: "justonesegment",
    "empty segments": lambda t: "..",
    "non-ascii": lambda t: "ünï.cödé.tökén",
    "100 kB token": lambda t: t.make(name="x" * 100_000),
}
BAD_TOKENS.update({f"missing {claim}": _without(claim) for claim in ("iss", "aud", "sub", "exp", "iat", "jti", "sid")})


@pytest.mark.parametrize("name", sorted(BAD_TOKENS))
def test_bad_tokens_are_invalid_token(client, tokens, keys_dir, name):
    build = BAD_TOKENS[name]
    token = build(tokens, keys_dir) if build.__code__.co_argcount == 2 else build(tokens)
    response = call(client, token)
    assert response.status_code == 401, response.json
    assert response.json["code"] == "invalid_token"
    assert response.headers["Content-Type"] == "application/problem+json"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token", error_description="')


def test_expired_token_is_token_expired(client, tokens):
    response = call(client, tokens.make(iat=NOW - 7200, exp=NOW - 3600))
    assert response.status_code == 401
    assert response.json["code"] == "token_expired"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_expired_token_with_a_bad_signature_is_invalid_not_expired(client, tokens):
    token = tokens.make(iat=NOW - 7200, exp=NOW - 3600)
    assert call(client, token[:-8]).json["code"] == "invalid_token"


def test_leeway_accepts_a_token_that_just_expired(client, tokens):
    assert call(client, tokens.make(iat=NOW - 100, exp=int(time.time()) - 2)).status_code == 200


@pytest.mark.parametrize(("value", "scheme"), [(None, "Bearer"), ("token", "Basic"), ("", "")])
def test_no_bearer_token_is_token_missing(client, value, scheme):
    response = call(client, value, scheme) if value is not None else call(client, None)
    assert response.status_code == 401
    assert response.json["code"] == "token_missing"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_empty_bearer_is_invalid(client):
    response = client.get("/whoami", headers={"Authorization": "Bearer "})
    assert response.json["code"] in {"invalid_token", "token_missing"}
    assert response.status_code == 401


def test_scheme_is_case_insensitive(client, tokens):
    assert call(client, tokens.make(), scheme="bearer").status_code == 200


def test_cached_tokens_still_expire_on_time(keys_dir, tokens):
    verifier = AccessTokenVerifier(JwksKeys(path=keys_dir / "jwks.json"), issuer=ISSUER, audience=AUDIENCE, leeway=0)
    token = tokens.make(exp=int(time.time()) + 1)
    assert verifier.verify(token).id  # verified and remembered
    assert verifier.verify(token).id  # served from the cache
    time.sleep(1.2)
    with pytest.raises(TokenError) as failure:
        verifier.verify(token)
    assert failure.value.code == "token_expired"


def test_cache_is_bounded(keys_dir, tokens):
    verifier = AccessTokenVerifier(
        JwksKeys(path=keys_dir / "jwks.json"), issuer=ISSUER, audience=AUDIENCE, cache_size=10
    )
    for _ in range(25):
        verifier.verify(tokens.make())
    assert len(verifier._verified) <= 10


def test_cache_can_be_turned_off(keys_dir, tokens):
    verifier = AccessTokenVerifier(
        JwksKeys(path=keys_dir / "jwks.json"), issuer=ISSUER, audience=AUDIENCE, cache_size=0
    )
    token = tokens.make()
    assert verifier.verify(token).id == verifier.verify(token).id
    assert verifier._verified == {}


def test_symmetric_and_unusable_keys_in_a_jwks_are_ignored():
    jwks = {
        "keys": [
            {"kty": "oct", "k": b64(b"secret"), "kid": "hmac", "alg": "HS256"},
            {"kty": "RSA", "kid": "no-alg", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "alg": "RS256", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "RSA", "kid": "broken", "alg": "RS256", "n": "!!", "e": "AQAB"},
            "not a key",
        ]
    }
    assert JwksKeys.parse(jwks) == {}
    assert JwksKeys.parse({"no": "keys"}) == {}


def _token_of_length(tokens, length: int) -> str:
    """A valid token exactly `length` characters long, padded through the name and jti claims."""
    base = len(tokens.make(name="", jti="j"))
    # base64 skips some lengths for a given name length; a second padded claim fills the gaps.
    for name_length in range(max(0, (length - base) * 3 // 4 - 8), (length - base) * 3 // 4 + 8):
        for jti_length in range(1, 8):
            token = tokens.make(name="n" * name_length, jti="j" * jti_length)
            if len(token) == length:
                return token
    raise AssertionError(f"no token of length {length}")


def test_the_8_kb_limit_is_exact(verifier, tokens):
    assert verifier.verify(_token_of_length(tokens, MAX_TOKEN_LENGTH)).id  # at the limit: verified
    with pytest.raises(TokenError) as refused:
        verifier.verify(_token_of_length(tokens, MAX_TOKEN_LENGTH + 1))
    assert refused.value.code == "invalid_token"
    assert "too long" in refused.value.detail


def test_a_header_alg_other_than_the_keys_is_refused_on_an_rsa_key():
    """PS256 and RS256 both fit an RSA key; the key's JWKS `alg` (RS256) decides, not the header."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    verifier = AccessTokenVerifier(
        JwksKeys(jwks={"keys": [{**jwk, "kid": "rsa-1", "alg": "RS256", "use": "sig"}]}),
        issuer=ISSUER,
        audience=AUDIENCE,
    )
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "exp": int(time.time()) + 600,
        "iat": int(time.time()),
        "jti": "j1",
        "sid": "s" * 32,
    }
    headers = {"typ": "at+jwt", "kid": "rsa-1"}
    assert verifier.verify(jwt.encode(claims, private_key, algorithm="RS256", headers=headers)).id == "user-1"
    with pytest.raises(TokenError) as refused:
        verifier.verify(jwt.encode(claims, private_key, algorithm="PS256", headers=headers))
    assert refused.value.code == "invalid_token"
    # The verifier's own pin answers first; PyJWT's `algorithms=[alg]` is the second line of defence.
    assert "algorithm" in refused.value.detail


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "http://127.0.0.1:9/jwks.json"},
        {"x5u": "http://127.0.0.1:9/c.pem"},
        {"jwk": {"kty": "EC"}},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"]},
    ],
)
def test_key_pointing_headers_are_refused_by_the_verifier_itself(verifier, tokens, header):
    """Our own check answers before PyJWT's (which refuses `crit` too): neither layer alone is trusted."""
    with pytest.raises(TokenError) as refused:
        verifier.verify(tokens.make(headers=header))
    assert "header is not accepted" in refused.value.detail


def test_a_usable_key_after_unusable_ones_is_kept_and_an_encryption_key_is_not():
    """Skipping a bad entry moves on to the next one; `use` defaults to `sig` and `enc` is refused."""
    good = jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    encryption = jwt.algorithms.RSAAlgorithm.to_jwk(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), as_dict=True
    )
    jwks = {
        "keys": [
            "not a key",
            {"kty": "oct", "k": b64(b"secret"), "kid": "hmac", "alg": "HS256"},
            {**encryption, "kid": "enc", "alg": "RS256", "use": "enc"},
            {**good, "kid": "good", "alg": "ES256"},  # no `use`: a signing key
        ]
    }
    assert set(JwksKeys.parse(jwks)) == {"good"}


def test_a_verified_token_is_not_verified_again(verifier, tokens):
    """One signature check per token: later calls are served from the cache (still checking exp,
    revocation and that the key is still trusted)."""
    checks = []
    check_signature = verifier._verify_signature_and_claims
    verifier._verify_signature_and_claims = lambda token: checks.append(token) or check_signature(token)
    token = tokens.make()
    callers = [verifier.verify(token) for _ in range(5)]
    assert checks == [token]
    assert all(caller == callers[0] for caller in callers)


def test_a_name_that_is_not_a_string_becomes_empty(verifier, tokens):
    assert verifier.verify(tokens.make(name=123)).name == ""
