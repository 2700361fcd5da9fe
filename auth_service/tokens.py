"""Access-token issuing: the only place that holds the private key."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwt.utils import base64url_encode

from auth_service.keys import load_private_key, public_jwk, read_jwks, signing_algorithm
from shared.access_tokens import ACCESS_TOKEN_TYPE


class TokenIssuer:
    """Sign access tokens with the current key, loaded once, and publish the JWKS."""

    def __init__(self, signing_key_path: Path, jwks_path: Path | None, *, issuer: str, audience: str, ttl: int) -> None:
        self._private_key = load_private_key(signing_key_path)  # parsed once (an RSA key takes ~40 ms)
        self.algorithm = signing_algorithm(self._private_key)
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        current = public_jwk(self._private_key)
        self.kid = current["kid"]
        # Publish the current key first, then retired keys whose tokens may still be valid.
        others = [k for k in read_jwks(jwks_path)["keys"] if k.get("kid") != self.kid] if jwks_path else []
        self.jwks: dict[str, Any] = {"keys": [current, *others]}
        # The JWS header is the same for every token of a key: encoded once, as PyJWT would (sorted,
        # compact), not per token; the signature is PyJWT's own algorithm (ES256: raw r || s).
        header = {"alg": self.algorithm, "kid": self.kid, "typ": ACCESS_TOKEN_TYPE}
        self._header_segment = base64url_encode(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
        self._signer = jwt.PyJWS().get_algorithm_by_name(self.algorithm)

    def derive_secret(self, purpose: str) -> bytes:
        """A 256-bit secret for `purpose`, derived from the signing key, so that every replica that
        holds the key agrees on it and there is no second secret to distribute; a new key renews it."""
        material = self._private_key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(material)

    def issue(self, *, user_id: str, name: str, session_id: str, jkt: str = "") -> str:
        """An access token; with `jkt` it is DPoP-bound to that key (RFC 9449 §6: `cnf.jkt`)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": user_id,
            "exp": now + self.ttl,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "sid": session_id,
            "name": name,
        }
        if jkt:
            claims["cnf"] = {"jkt": jkt}
        signing_input = (
            self._header_segment + b"." + base64url_encode(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._signer.sign(signing_input, self._private_key)
        return (signing_input + b"." + base64url_encode(signature)).decode()
