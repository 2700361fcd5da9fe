"""A DPoP client key that signs real proofs (RFC 9449 §4), as the browser does with WebCrypto."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from shared.dpop import jwk_thumbprint

PUBLIC_ORIGIN = "http://localhost:8080"  # the default JWT_ISSUER's origin


def ath(access_token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(access_token.encode()).digest()).rstrip(b"=").decode()


class DpopKey:
    """An ES256 key pair (another curve with `curve`) that makes proofs; every part can be overridden."""

    def __init__(self, curve: ec.EllipticCurve | None = None) -> None:
        self.private_key = ec.generate_private_key(curve or ec.SECP256R1())
        self.jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(
        self,
        method: str,
        path_or_url: str,
        *,
        header: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        access_token: str | None = None,
        signer: Any = None,
        algorithm: str = "ES256",
        **claims: Any,
    ) -> str:
        url = path_or_url if "://" in path_or_url else PUBLIC_ORIGIN + path_or_url
        body = {"jti": secrets.token_urlsafe(12), "htm": method, "htu": url, "iat": int(time.time())}
        if access_token is not None:
            body["ath"] = ath(access_token)
        body.update(claims)
        heading = {"typ": "dpop+jwt", "alg": algorithm, "jwk": self.jwk, **(header or {})}
        for name in drop:
            body.pop(name, None)
            heading.pop(name, None)
        if heading.get("alg") == "none":
            return _unsigned(heading, body)
        # PyJWT adds `typ`/`alg` itself; the header is written out as given.
        token = jwt.encode(body, signer or self.private_key, algorithm=algorithm, headers=heading)
        if "typ" not in heading or "alg" not in heading:
            _, payload, signature = token.split(".")
            return f"{_b64(heading)}.{payload}.{signature}"
        return token


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(header)}.{_b64(claims)}.AAAA"  # a signature segment the checks must not trust
