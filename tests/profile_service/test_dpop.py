"""DPoP-bound access tokens at the profile service (RFC 9449 §7): the token's `cnf.jkt` key must sign
a proof for this request and this token (`ath`); Bearer tokens without `cnf` work as before."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.support.dpop import DpopKey
from tests.support.tokens import TokenFactory

ME = "/api/profiles/me"


def assert_refused(response, code: str) -> None:
    assert response.status_code == 401, response.get_json()
    assert response.get_json()["code"] == code
    assert response.headers["WWW-Authenticate"].startswith(f'DPoP error="{code}"')


@pytest.fixture
def key() -> DpopKey:
    return DpopKey()


@pytest.fixture
def bound(tokens: TokenFactory, key: DpopKey) -> str:
    return tokens.make(sub="user-dpop", name="Bound", cnf={"jkt": key.jkt})


def dpop(token: str, proof: str | None) -> dict[str, str]:
    return {"Authorization": f"DPoP {token}", **({"DPoP": proof} if proof is not None else {})}


def test_a_bound_token_with_a_proof_of_its_key_is_served(client: FlaskClient, bound: str, key: DpopKey) -> None:
    for _ in range(2):  # cached verification or not, each call brings its own proof
        response = client.get(ME, headers=dpop(bound, key.proof("GET", ME, access_token=bound)))
        assert response.status_code == 200, response.get_json()
    response = client.patch(ME, json={"bio": "bound"}, headers=dpop(bound, key.proof("PATCH", ME, access_token=bound)))
    assert response.status_code == 200


def test_a_bound_token_sent_as_bearer_is_refused(client: FlaskClient, bound: str, key: DpopKey) -> None:
    headers = {"Authorization": f"Bearer {bound}", "DPoP": key.proof("GET", ME, access_token=bound)}
    assert_refused(client.get(ME, headers=headers), "invalid_token")


BAD = {
    "no proof": lambda key, token: None,
    "a proof without ath": lambda key, token: key.proof("GET", ME),
    "a proof for another token": lambda key, token: key.proof("GET", ME, access_token=token + "x"),
    "a proof by another key": lambda key, token: DpopKey().proof("GET", ME, access_token=token),
    "a proof for another method": lambda key, token: key.proof("POST", ME, access_token=token),
    "a proof for another URL": lambda key, token: key.proof("GET", "/api/profiles/other", access_token=token),
    "a malformed proof": lambda key, token: "garbage",
}


@pytest.mark.parametrize("name", BAD)
def test_a_bound_token_without_a_good_proof_is_refused(client: FlaskClient, bound: str, key: DpopKey, name) -> None:
    assert_refused(client.get(ME, headers=dpop(bound, BAD[name](key, bound))), "invalid_dpop_proof")


def test_a_replayed_proof_is_refused(client: FlaskClient, bound: str, key: DpopKey) -> None:
    proof = key.proof("GET", ME, access_token=bound)
    assert client.get(ME, headers=dpop(bound, proof)).status_code == 200
    assert_refused(client.get(ME, headers=dpop(bound, proof)), "invalid_dpop_proof")


def test_an_unbound_token_stays_bearer(client: FlaskClient, tokens: TokenFactory, key: DpopKey) -> None:
    token = tokens.make(sub="user-bearer")
    assert client.get(ME, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert_refused(client.get(ME, headers=dpop(token, key.proof("GET", ME, access_token=token))), "invalid_token")
