"""DPoP-bound access tokens at the board service: the same rule as at profile (shared/access_tokens.py)."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.support.dpop import DpopKey
from tests.support.tokens import TokenFactory

BOARDS = "/api/boards"
POST = {"title": "Bound", "content": "posted with a DPoP-bound token"}


def test_posting_with_a_bound_token_needs_a_proof_of_its_key(client: FlaskClient, tokens: TokenFactory) -> None:
    key = DpopKey()
    token = tokens.make(sub="author-dpop", name="Bound", cnf={"jkt": key.jkt})
    refused = [
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"DPoP {token}"},
        {"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", BOARDS, access_token="another")},
        {"Authorization": f"DPoP {token}", "DPoP": DpopKey().proof("POST", BOARDS, access_token=token)},
    ]
    for headers, code in zip(refused, ("invalid_token", *["invalid_dpop_proof"] * 3), strict=True):
        response = client.post(BOARDS, json=POST, headers=headers)
        assert response.status_code == 401 and response.get_json()["code"] == code, headers
        assert response.headers["WWW-Authenticate"].startswith(f'DPoP error="{code}"')
    assert client.get(BOARDS).get_json()["items"] == []  # nothing was posted
    headers = {"Authorization": f"DPoP {token}", "DPoP": key.proof("POST", BOARDS, access_token=token)}
    response = client.post(BOARDS, json=POST, headers=headers)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["author"] == {"id": "author-dpop", "name": "Bound"}
