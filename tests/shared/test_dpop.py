"""shared/dpop.py's pure parts: the RFC 7638 thumbprint, htu normalisation and the per-process jti memory."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from werkzeug.datastructures import EnvironHeaders, Headers

from auth_service.keys import rfc7638_thumbprint
from shared.dpop import DpopError, MemoryReplayCache, jwk_thumbprint, normalise_url, proof_header

# RFC 7638 §3.1: the example key and its thumbprint.
RFC_7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
    "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0"
    "zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
    "Cur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}


def test_the_thumbprint_is_rfc_7638s_and_auths():
    assert jwk_thumbprint(RFC_7638_KEY) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    ec_jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    rsa_jwk = RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key(), as_dict=True)
    for jwk in (ec_jwk, rsa_jwk, RFC_7638_KEY):
        assert jwk_thumbprint(jwk) == rfc7638_thumbprint(jwk)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://localhost:8080/api/auth/refresh", "HTTP://LocalHost:8080/api/auth/refresh?x=1#y"),
        ("https://app.example.com/api", "https://app.example.com:443/api"),
        ("http://app.example.com/", "http://app.example.com"),
    ],
)
def test_urls_that_name_the_same_resource_compare_equal(a, b):
    assert normalise_url(a) == normalise_url(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("http://localhost:8080/api/auth/refresh", "http://localhost:8080/api/auth/refresh/"),
        ("http://localhost:8080/api/auth/refresh", "https://localhost:8080/api/auth/refresh"),
        ("http://localhost:8080/api/auth/refresh", "http://localhost:8081/api/auth/refresh"),
        ("http://localhost:8080/api/auth/refresh", "http://localhost:8080/api/auth/REFRESH"),
    ],
)
def test_urls_of_other_resources_differ(a, b):
    assert normalise_url(a) != normalise_url(b)


def test_the_memory_replay_cache_refuses_a_key_within_its_window_and_forgets_it_after():
    cache = MemoryReplayCache()
    assert cache.first_use("a", 50) and not cache.first_use("a", 50)
    time.sleep(0.06)  # a deadline passing, not a timing assertion
    assert cache.first_use("a", 50)


def test_the_memory_replay_cache_is_bounded_dropping_the_oldest():
    cache = MemoryReplayCache(max_entries=3)
    for key in "abcd":
        assert cache.first_use(key, 60_000)
    assert cache.first_use("a", 60_000)  # dropped to make room for d
    assert not cache.first_use("d", 60_000)


def test_the_proof_header_is_none_one_value_or_refused_when_repeated():
    assert proof_header(Headers({"Cookie": "a=b"})) is None
    assert proof_header(Headers([("DPoP", "x.y.z")])) == "x.y.z"
    assert proof_header(EnvironHeaders({"HTTP_DPOP": "x.y.z", "HTTP_COOKIE": "a=b"})) == "x.y.z"
    assert proof_header(EnvironHeaders({"HTTP_COOKIE": "a=b"})) is None
    with pytest.raises(DpopError) as refused:
        proof_header(Headers([("DPoP", "a.b.c"), ("DPoP", "d.e.f")]))
    assert refused.value.reason == "several"
