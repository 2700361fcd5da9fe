"""Access tokens and the JWKS, checked with an independent JOSE library (joserfc)."""

import json
import stat
import time

from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet

from auth_service.keys import init_keys, rfc7638_thumbprint, rotate_keys
from tests.auth_service.conftest import bearer


def test_jwks_is_served_at_both_paths(client):
    well_known = client.get("/.well-known/jwks.json")
    under_auth = client.get("/api/auth/jwks.json")
    assert well_known.status_code == under_auth.status_code == 200
    assert well_known.json == under_auth.json
    for key in well_known.json["keys"]:
        assert {"kid", "alg", "use", "kty"} <= set(key)
        assert key["use"] == "sig" and key["alg"] == "ES256" and key["crv"] == "P-256"
        assert "d" not in key  # public halves only
    assert "max-age" in well_known.headers["Cache-Control"]


def test_kid_is_the_rfc7638_thumbprint(client):
    for key in client.get("/.well-known/jwks.json").json["keys"]:
        assert key["kid"] == ECKey.import_key(key).thumbprint() == rfc7638_thumbprint(key)


def test_access_token_verifies_with_joserfc_and_has_exactly_the_contract_claims(auth, client):
    user, access = auth.signup_and_login()
    key_set = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    token = jose_jwt.decode(access, key_set, algorithms=["ES256"])
    assert token.header == {"alg": "ES256", "kid": key_set.keys[0].kid, "typ": "at+jwt"}
    claims = token.claims
    assert set(claims) == {"iss", "aud", "sub", "exp", "iat", "jti", "sid", "name"}
    jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "http://localhost:8080"},
        aud={"essential": True, "value": "silent-auth"},
        sub={"essential": True, "value": user["id"]},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(claims)
    assert claims["name"] == user["name"]
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5


def test_each_token_has_its_own_jti(auth, client):
    user, first = auth.signup_and_login()
    second = auth.login(user["email"]).json["access_token"]
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    assert jose_jwt.decode(first, keys).claims["jti"] != jose_jwt.decode(second, keys).claims["jti"]
    assert jose_jwt.decode(first, keys).claims["sid"] != jose_jwt.decode(second, keys).claims["sid"]


def test_access_token_ttl_is_configurable(make_app):
    client = make_app(access_token_ttl=30).test_client()
    client.post("/api/auth/signup", json={"email": "ttl@example.com", "password": "long enough", "name": "T"})
    response = client.post("/api/auth/login", json={"email": "ttl@example.com", "password": "long enough"})
    assert response.json["expires_in"] == 30
    claims = jose_jwt.decode(
        response.json["access_token"], KeySet.import_key_set(client.get("/.well-known/jwks.json").json)
    ).claims
    assert claims["exp"] - claims["iat"] == 30


def test_rotated_key_is_published_beside_the_old_one(make_app, tmp_path, keys_dir):
    directory = tmp_path / "keys"
    directory.mkdir()
    for name in ("signing.pem", "jwks.json"):
        (directory / name).write_bytes((keys_dir / name).read_bytes())
    old_kid = json.loads((directory / "jwks.json").read_text())["keys"][0]["kid"]
    new_kid = rotate_keys(directory)
    app = make_app(signing_key_path=directory / "signing.pem", jwks_path=directory / "jwks.json")
    client = app.test_client()
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").json["keys"]] == [new_kid, old_kid]
    client.post("/api/auth/signup", json={"email": "rot@example.com", "password": "long enough", "name": "R"})
    access = client.post("/api/auth/login", json={"email": "rot@example.com", "password": "long enough"}).json[
        "access_token"
    ]
    assert (
        jose_jwt.decode(access, KeySet.import_key_set(client.get("/.well-known/jwks.json").json)).header["kid"]
        == new_kid
    )
    assert client.get("/api/auth/sessions", headers=bearer(access)).status_code == 200


def test_an_existing_rsa_signing_key_keeps_working_as_rs256(make_app, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    directory = tmp_path / "rsa-keys"
    directory.mkdir()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (directory / "signing.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    app = make_app(signing_key_path=directory / "signing.pem", jwks_path=directory / "jwks.json")
    client = app.test_client()
    [published] = client.get("/.well-known/jwks.json").json["keys"]
    assert published["alg"] == "RS256" and published["kty"] == "RSA"
    client.post("/api/auth/signup", json={"email": "rsa@example.com", "password": "long enough", "name": "R"})
    access = client.post("/api/auth/login", json={"email": "rsa@example.com", "password": "long enough"}).json[
        "access_token"
    ]
    assert jose_jwt.decode(access, KeySet.import_key_set({"keys": [published]})).header["alg"] == "RS256"
    assert client.get("/api/auth/sessions", headers=bearer(access)).status_code == 200


def test_the_signing_key_file_is_readable_by_its_owner_only(tmp_path):
    init_keys(tmp_path / "keys")
    assert stat.S_IMODE((tmp_path / "keys" / "signing.pem").stat().st_mode) == 0o600
