"""DPoP end to end, the `make run` way: through nginx, with server nonces and bound access tokens.

The gateway passes the `DPoP` request header and the `DPoP-Nonce` and `WWW-Authenticate` answers
through untouched; proofs name the public origin (JWT_ISSUER's, http://localhost:8080), whatever
address the client connected to.
"""

from __future__ import annotations

import pytest
import requests

from tests.support.dpop import DpopKey
from tests.support.stack import Stack

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    running = Stack(tmp_path_factory.mktemp("stack"), DPOP_NONCE="true", ACCESS_TOKEN_BINDING="dpop").start()
    yield running
    running.stop()


def _signed(key: DpopKey, method: str, path: str, nonce: str, **claims) -> dict[str, str]:
    return {"DPoP": key.proof(method, path, nonce=nonce, **claims)}


def test_a_bound_session_through_the_gateway(stack):
    base, key = stack.url, DpopKey()
    body = {"email": "dpop@example.com", "password": PASSWORD}
    assert requests.post(f"{base}/api/auth/signup", json={**body, "name": "D"}, timeout=10).status_code == 201

    asked = requests.post(f"{base}/api/auth/login", json=body, headers={"DPoP": key.proof("POST", "/api/auth/login")})
    assert asked.status_code == 401 and asked.json()["code"] == "use_dpop_nonce"
    assert asked.headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
    nonce = asked.headers["DPoP-Nonce"]

    login = requests.post(f"{base}/api/auth/login", json=body, headers=_signed(key, "POST", "/api/auth/login", nonce))
    assert login.status_code == 200, login.text
    assert login.json()["token_type"] == "DPoP"
    access, cookie = login.json()["access_token"], {"Cookie": f"refresh_token={login.cookies['refresh_token']}"}

    stolen = requests.post(f"{base}/api/auth/refresh", headers=cookie, timeout=10)
    assert stolen.status_code == 401 and stolen.json()["code"] == "invalid_dpop_proof"
    assert stolen.headers["WWW-Authenticate"].startswith('DPoP error="invalid_dpop_proof"')

    refreshed = requests.post(
        f"{base}/api/auth/refresh", headers={**cookie, **_signed(key, "POST", "/api/auth/refresh", nonce)}, timeout=10
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.headers["DPoP-Nonce"]

    me = "/api/profiles/me"
    as_bearer = requests.get(f"{base}{me}", headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert as_bearer.status_code == 401 and as_bearer.json()["code"] == "invalid_token"
    headers = {"Authorization": f"DPoP {access}", **_signed(key, "GET", me, nonce, access_token=access)}
    assert requests.get(f"{base}{me}", headers=headers, timeout=10).status_code == 200
    board = {"Authorization": f"DPoP {access}", **_signed(key, "POST", "/api/boards", nonce, access_token=access)}
    posted = requests.post(f"{base}/api/boards", json={"title": "t", "content": "c"}, headers=board, timeout=10)
    assert posted.status_code == 201, posted.text

    # Nonces are asked for at auth's cookie endpoints only: the resource services and auth's own
    # Bearer endpoints take a proof without one (and send none), so a client never meets
    # use_dpop_nonce there.
    for path in (me, "/api/auth/sessions"):
        no_nonce = {"Authorization": f"DPoP {access}", "DPoP": key.proof("GET", path, access_token=access)}
        served = requests.get(f"{base}{path}", headers=no_nonce, timeout=10)
        assert served.status_code == 200, served.text
        assert "DPoP-Nonce" not in served.headers
