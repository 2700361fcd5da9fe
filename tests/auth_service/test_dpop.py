"""DPoP at the cookie endpoints (RFC 9449): every proof check, and sessions bound to the browser's key.

Each rule is checked through the HTTP interface on real Redis: a login with a bad proof is refused
(and starts no session), a bound session's refresh and logout need a proof of its key, and a
refused request changes nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import time

import jwt
import jwt.algorithms
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from auth_service.context import AuthContext
from tests.auth_service.conftest import PASSWORD, bearer, refresh_cookie
from tests.support.dpop import DpopKey

LOGIN, REFRESH, LOGOUT = "/api/auth/login", "/api/auth/refresh", "/api/auth/logout"


def assert_refused(response, code: str = "invalid_dpop_proof") -> None:
    assert response.status_code == 401, response.json
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json["code"] == code
    assert response.headers["WWW-Authenticate"].startswith(f'DPoP error="{code}"')


def login(auth, key: DpopKey | None, proof: str | None = None):
    """Sign up and log in (with a proof of `key`, or `proof` as given); return the response."""
    user = auth.signup()
    headers = {}
    if proof is not None or key is not None:
        headers["DPoP"] = proof if proof is not None else key.proof("POST", LOGIN)
    return auth.login(user["email"], headers=headers)


def post(client, path: str, token: str | None, proof: str | None = None):
    if token is not None:
        client.set_cookie("refresh_token", token, path="/api/auth")
    return client.post(path, headers={"DPoP": proof} if proof is not None else {})


def sessions_in_redis(app) -> list[dict]:
    redis = AuthContext.of(app).redis
    return [json.loads(redis.get(key)) for key in redis.scan_iter(match="auth:u:*") if b":ended:" not in key]


def with_header(proof: str, **changes) -> str:
    """The proof with its header changed (its signature no longer covers it)."""
    head, rest = proof.split(".", 1)
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    encoded = base64.urlsafe_b64encode(json.dumps({**header, **changes}).encode()).rstrip(b"=").decode()
    return f"{encoded}.{rest}"


# -- every proof check (RFC 9449 §4.3), at login: a refused proof starts no session ---------------------

other = DpopKey()
BAD_PROOFS = {
    "not a JWS": lambda key: "not-a-proof",
    "two segments": lambda key: ".".join(key.proof("POST", LOGIN).split(".")[:2]),
    "typ JWT": lambda key: key.proof("POST", LOGIN, header={"typ": "JWT"}),
    "no typ": lambda key: key.proof("POST", LOGIN, drop=("typ",)),
    "an extra header (kid)": lambda key: key.proof("POST", LOGIN, header={"kid": "k1"}),
    "no jwk": lambda key: key.proof("POST", LOGIN, drop=("jwk",)),
    "alg none": lambda key: key.proof("POST", LOGIN, header={"alg": "none"}),
    "alg HS256": lambda key: key.proof("POST", LOGIN, algorithm="HS256", signer=b"a shared secret of 32 bytes!!!!!"),
    "a private jwk": lambda key: key.proof(
        "POST",
        LOGIN,
        header={"jwk": {**key.jwk, "d": jwt.algorithms.ECAlgorithm.to_jwk(key.private_key, as_dict=True)["d"]}},
    ),
    "a symmetric jwk": lambda key: key.proof("POST", LOGIN, header={"jwk": {"kty": "oct", "k": "c2VjcmV0"}}),
    "signed by another key": lambda key: key.proof("POST", LOGIN, signer=other.private_key),
    "ES256 naming a P-384 key": lambda key: with_header(
        DpopKey(ec.SECP384R1()).proof("POST", LOGIN, algorithm="ES384"), alg="ES256"
    ),
    "htm GET": lambda key: key.proof("POST", LOGIN, htm="GET"),
    "htu another path": lambda key: key.proof("POST", LOGIN, htu="http://localhost:8080/api/auth/refresh"),
    "htu the Host header's origin": lambda key: key.proof("POST", LOGIN, htu="http://localhost/api/auth/login"),
    "htu another origin": lambda key: key.proof("POST", LOGIN, htu="https://evil.example/api/auth/login"),
    "iat too old": lambda key: key.proof("POST", LOGIN, iat=int(time.time()) - 70),
    "iat in the future": lambda key: key.proof("POST", LOGIN, iat=int(time.time()) + 70),
    "iat not a number": lambda key: key.proof("POST", LOGIN, iat="now"),
    "no jti": lambda key: key.proof("POST", LOGIN, drop=("jti",)),
    "no htu": lambda key: key.proof("POST", LOGIN, drop=("htu",)),
    "over 8 kB": lambda key: key.proof("POST", LOGIN, pad="x" * 8192),
}


# The reason each is refused for, as the security event names it.
REASONS = {
    "not a JWS": "malformed",
    "two segments": "malformed",
    "typ JWT": "bad_header",
    "no typ": "bad_header",
    "an extra header (kid)": "bad_header",
    "no jwk": "bad_header",
    "alg none": "bad_alg",
    "alg HS256": "bad_alg",
    "a private jwk": "private_key",
    "a symmetric jwk": "bad_key",
    "signed by another key": "bad_signature",
    "ES256 naming a P-384 key": "bad_key",
    "htm GET": "wrong_htm",
    "htu another path": "wrong_htu",
    "htu the Host header's origin": "wrong_htu",
    "htu another origin": "wrong_htu",
    "iat too old": "stale",
    "iat in the future": "stale",
    "iat not a number": "stale",
    "no jti": "bad_claims",
    "no htu": "wrong_htu",
    "over 8 kB": "too_long",
}


@pytest.mark.parametrize("name", BAD_PROOFS)
def test_each_bad_proof_is_refused_and_starts_no_session(app, auth, name, caplog):
    with caplog.at_level(logging.WARNING, logger="security"):
        response = login(auth, None, proof=BAD_PROOFS[name](DpopKey()))
    assert_refused(response)
    assert [r.fields["reason"] for r in caplog.records if r.name == "security"] == [REASONS[name]]
    assert refresh_cookie(response) is None
    assert sessions_in_redis(app) == []


def test_an_rsa_key_under_2048_bits_is_refused(auth):
    key = DpopKey()
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refusing it is the point
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(small.public_key(), as_dict=True)
    proof = key.proof("POST", LOGIN, algorithm="RS256", signer=small, header={"jwk": jwk})
    assert_refused(login(auth, None, proof=proof))


def test_a_good_proof_passes_with_the_url_normalised_and_query_ignored(auth):
    key = DpopKey()
    for htu in ("http://LOCALHOST:8080/api/auth/login", "http://localhost:8080/api/auth/login?x=1#f"):
        assert login(auth, None, proof=key.proof("POST", LOGIN, htu=htu)).status_code == 200
    # the window's edges, inside: 60 s plus the leeway of 5, either way
    for skew in (-63, 63):
        assert login(auth, None, proof=key.proof("POST", LOGIN, iat=int(time.time()) + skew)).status_code == 200


def test_htu_is_the_public_url_whatever_host_the_request_names(auth):
    key = DpopKey()
    user = auth.signup()
    # The client-supplied Host is ignored: a proof for it is refused, a proof for the public URL passes.
    spoofed = key.proof("POST", "http://attacker.example/api/auth/login")
    assert_refused(auth.login(user["email"], headers={"DPoP": spoofed, "Host": "attacker.example"}))
    public = key.proof("POST", LOGIN)
    assert auth.login(user["email"], headers={"DPoP": public, "Host": "attacker.example"}).status_code == 200


def test_a_public_origin_can_be_configured(make_app):
    app = make_app(dpop_public_origin="https://app.example.com")
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "o@example.com", "password": PASSWORD, "name": "O"})
    key = DpopKey()
    body = {"email": "o@example.com", "password": PASSWORD}
    assert_refused(client.post(LOGIN, json=body, headers={"DPoP": key.proof("POST", LOGIN)}))
    proof = key.proof("POST", "https://app.example.com/api/auth/login")
    assert client.post(LOGIN, json=body, headers={"DPoP": proof}).status_code == 200


def test_two_dpop_headers_are_refused(auth):
    key = DpopKey()
    user = auth.signup()
    headers = [("DPoP", key.proof("POST", LOGIN)), ("DPoP", key.proof("POST", LOGIN))]
    assert_refused(auth.login(user["email"], headers=headers))


def test_a_replayed_proof_is_refused(auth):
    key = DpopKey()
    proof = key.proof("POST", LOGIN)
    user = auth.signup()
    assert auth.login(user["email"], headers={"DPoP": proof}).status_code == 200
    assert_refused(auth.login(user["email"], headers={"DPoP": proof}))


def test_the_8_kb_limit_is_checked_before_parsing(auth):
    # Just under the limit a (padded) proof passes; one byte past, even a well-formed one is refused.
    key = DpopKey()
    fits = key.proof("POST", LOGIN, pad="x" * 5000)
    fits = key.proof("POST", LOGIN, pad="x" * (5000 + (8192 - len(fits)) * 3 // 4 - 2))
    assert 8150 < len(fits) <= 8192
    assert login(auth, None, proof=fits).status_code == 200
    assert_refused(login(auth, None, proof=fits + "A" * (8193 - len(fits))))


# -- sessions bound to the key -----------------------------------------------------------------------


def bound_login(auth, key: DpopKey) -> str:
    response = login(auth, key)
    assert response.status_code == 200, response.json
    assert response.json["token_type"] == "Bearer"  # access tokens stay Bearer by default
    return refresh_cookie(response)


def test_login_with_a_proof_binds_the_session_to_the_keys_thumbprint(app, auth):
    key = DpopKey()
    bound_login(auth, key)
    [document] = sessions_in_redis(app)
    [session] = document["s"].values()
    assert key.jkt in session


def test_the_owner_refreshes_with_proofs_of_the_key(auth, client):
    key = DpopKey()
    token = bound_login(auth, key)
    for _ in range(3):
        response = post(client, REFRESH, token, key.proof("POST", REFRESH))
        assert response.status_code == 200, response.json
        token = refresh_cookie(response)


@pytest.mark.parametrize("thief", ["no proof", "another key's proof"])
def test_a_stolen_cookie_is_refused_and_the_owner_keeps_refreshing(auth, client, thief, caplog):
    key = DpopKey()
    token = bound_login(auth, key)
    proof = None if thief == "no proof" else DpopKey().proof("POST", REFRESH)
    with caplog.at_level(logging.WARNING, logger="security"):
        response = post(client, REFRESH, token, proof)
    assert_refused(response)
    assert refresh_cookie(response) is None  # the cookie is not cleared either
    # The session is as it was: the owner's very token still rotates (no generation was spent).
    assert post(client, REFRESH, token, key.proof("POST", REFRESH)).status_code == 200
    [event] = [r for r in caplog.records if r.name == "security" and r.fields["event"] == "dpop_proof_refused"]
    fields = event.fields
    assert {k: fields[k] for k in ("event", "session_id", "reason", "endpoint")} == {
        "event": "dpop_proof_refused",
        "session_id": token.split(".")[0],
        "reason": "missing" if thief == "no proof" else "wrong_key",
        "endpoint": "auth.refresh",
    }
    assert set(fields) == {"event", "session_id", "reason", "endpoint", "client_address", "user_agent"}
    assert token not in caplog.text and (proof is None or proof not in caplog.text)


def test_a_stolen_older_cookie_without_the_key_does_not_end_the_session(auth, client):
    # An older generation is theft and would end the session: without the key it changes nothing.
    key = DpopKey()
    first = bound_login(auth, key)
    second = refresh_cookie(post(client, REFRESH, first, key.proof("POST", REFRESH)))
    third = refresh_cookie(post(client, REFRESH, second, key.proof("POST", REFRESH)))
    assert_refused(post(client, REFRESH, first, DpopKey().proof("POST", REFRESH)))
    assert post(client, REFRESH, third, key.proof("POST", REFRESH)).status_code == 200


def test_a_replayed_refresh_proof_is_refused(auth, client):
    key = DpopKey()
    token = bound_login(auth, key)
    proof = key.proof("POST", REFRESH)
    token = refresh_cookie(post(client, REFRESH, token, proof))
    assert_refused(post(client, REFRESH, token, proof))
    assert post(client, REFRESH, token, key.proof("POST", REFRESH)).status_code == 200


def test_a_proof_for_another_endpoint_is_refused(auth, client):
    key = DpopKey()
    token = bound_login(auth, key)
    assert_refused(post(client, REFRESH, token, key.proof("POST", LOGOUT)))


def test_logout_of_a_bound_session_needs_a_proof_of_its_key(auth, client):
    key = DpopKey()
    token = bound_login(auth, key)
    assert_refused(post(client, LOGOUT, token))
    assert_refused(post(client, LOGOUT, token, DpopKey().proof("POST", LOGOUT)))
    response = post(client, REFRESH, token, key.proof("POST", REFRESH))  # a thief cannot log the owner out
    assert response.status_code == 200
    token = refresh_cookie(response)
    assert post(client, LOGOUT, token, key.proof("POST", LOGOUT)).status_code == 204
    response = post(client, REFRESH, token, key.proof("POST", REFRESH))
    assert response.status_code == 401 and response.json["code"] == "invalid_refresh_token"


def test_unbound_sessions_work_as_before_and_a_proof_does_not_bind_them(auth, client):
    token = refresh_cookie(login(auth, None))
    token = refresh_cookie(post(client, REFRESH, token))
    key = DpopKey()
    token = refresh_cookie(post(client, REFRESH, token, key.proof("POST", REFRESH)))
    assert post(client, REFRESH, token).status_code == 200  # still unbound
    assert_refused(post(client, REFRESH, None, "garbage"))  # a bad proof is refused even here


def test_required_bound_sessions_refuse_a_login_without_a_proof(make_app):
    client = make_app(require_bound_sessions=True).test_client()
    client.post("/api/auth/signup", json={"email": "b@example.com", "password": PASSWORD, "name": "B"})
    body = {"email": "b@example.com", "password": PASSWORD}
    assert_refused(client.post(LOGIN, json=body))
    assert client.post(LOGIN, json=body, headers={"DPoP": DpopKey().proof("POST", LOGIN)}).status_code == 200


# -- server nonces (§8) ------------------------------------------------------------------------------


def test_with_nonces_on_a_proof_without_the_servers_nonce_is_told_which_to_use(make_app):
    apps = [make_app(dpop_nonce=True), make_app(dpop_nonce=True)]  # two replicas of one deployment
    client = apps[0].test_client()
    client.post("/api/auth/signup", json={"email": "n@example.com", "password": PASSWORD, "name": "N"})
    body = {"email": "n@example.com", "password": PASSWORD}
    key = DpopKey()
    for nonce in (None, "made-up"):
        claims = {} if nonce is None else {"nonce": nonce}
        response = client.post(LOGIN, json=body, headers={"DPoP": key.proof("POST", LOGIN, **claims)})
        assert_refused(response, "use_dpop_nonce")
        issued = response.headers["DPoP-Nonce"]
    # The nonce one replica issued is good at the other; every answer brings the current one.
    other_client = apps[1].test_client()
    response = other_client.post(LOGIN, json=body, headers={"DPoP": key.proof("POST", LOGIN, nonce=issued)})
    assert response.status_code == 200, response.json
    assert response.headers["DPoP-Nonce"] == issued
    token = refresh_cookie(response)
    response = post(other_client, REFRESH, token, key.proof("POST", REFRESH, nonce=issued))
    assert response.status_code == 200


def test_with_nonces_on_every_answer_of_login_refresh_and_logout_carries_the_nonce(make_app):
    # docs/API.md: *every* answer, refusals included, so a client may pick the nonce up from any of
    # them (only the answers the proof check itself produced carried it).
    app = make_app(dpop_nonce=True)
    nonces = AuthContext.of(app).dpop.verifier.nonces
    client = app.test_client()
    client.post("/api/auth/signup", json={"email": "e@example.com", "password": PASSWORD, "name": "E"})
    key = DpopKey()
    nonce = client.post(LOGIN, json={"email": "e@example.com", "password": PASSWORD}).headers["DPoP-Nonce"]
    bound = client.post(
        LOGIN,
        json={"email": "e@example.com", "password": PASSWORD},
        headers={"DPoP": key.proof("POST", LOGIN, nonce=nonce)},
    )
    assert bound.status_code == 200, bound.json
    cookie = refresh_cookie(bound)
    answers = {
        "wrong password": client.post(LOGIN, json={"email": "e@example.com", "password": "wrong-pass"}),
        "unknown email": client.post(LOGIN, json={"email": "nobody@example.com", "password": PASSWORD}),
        "a bad proof": client.post(LOGIN, json={"email": "e@example.com", "password": PASSWORD}, headers={"DPoP": "x"}),
        "not JSON": client.post(LOGIN, data="x", content_type="text/plain"),
        "invalid fields": client.post(LOGIN, json={"email": 5}),
        "a foreign origin": client.post(REFRESH, headers={"Origin": "https://evil.example"}),
        "no cookie": client.post(REFRESH),
        "a forged cookie": post(client, REFRESH, "forged.1.cookie"),
        "a bound cookie without a proof": post(client, REFRESH, cookie),
        "logout of a bound cookie without a proof": post(client, LOGOUT, cookie),
        "logout without a cookie": client.post(LOGOUT, headers={"Cookie": ""}),
    }
    for name, response in answers.items():
        assert "DPoP-Nonce" in response.headers, (name, response.status_code)
        assert nonces.valid(response.headers["DPoP-Nonce"]), name  # the current one (a window may have begun)


# -- ACCESS_TOKEN_BINDING=dpop -----------------------------------------------------------------------


def test_bound_access_tokens_carry_the_keys_thumbprint(make_app):
    client = make_app(access_token_binding="dpop").test_client()
    client.post("/api/auth/signup", json={"email": "d@example.com", "password": PASSWORD, "name": "D"})
    key = DpopKey()
    body = {"email": "d@example.com", "password": PASSWORD}
    response = client.post(LOGIN, json=body, headers={"DPoP": key.proof("POST", LOGIN)})
    assert response.json["token_type"] == "DPoP"
    access = response.json["access_token"]
    assert jwt.decode(access, options={"verify_signature": False})["cnf"] == {"jkt": key.jkt}
    response = post(client, REFRESH, refresh_cookie(response), key.proof("POST", REFRESH))
    assert response.json["token_type"] == "DPoP"
    access = response.json["access_token"]
    assert jwt.decode(access, options={"verify_signature": False})["cnf"] == {"jkt": key.jkt}
    # auth's own Bearer endpoints want it as DPoP, with a proof
    sessions = "/api/auth/sessions"
    assert_refused(client.get(sessions, headers=bearer(access)), "invalid_token")
    proof = key.proof("GET", sessions, access_token=access)
    assert client.get(sessions, headers={"Authorization": f"DPoP {access}", "DPoP": proof}).status_code == 200
    # an unbound session still gets a Bearer token
    response = client.post(LOGIN, json=body)
    assert response.json["token_type"] == "Bearer"
    assert "cnf" not in jwt.decode(response.json["access_token"], options={"verify_signature": False})
