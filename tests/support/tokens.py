"""Sign real access tokens with the test key, so tests exercise the real verifier."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt

from auth_service.keys import load_private_key, public_jwk, signing_algorithm

ISSUER = "http://localhost:8080"
AUDIENCE = "silent-auth"


class TokenFactory:
    def __init__(self, signing_key_path: Path) -> None:
        self.private_key = load_private_key(signing_key_path)
        self.kid = public_jwk(self.private_key)["kid"]
        self.algorithm = signing_algorithm(self.private_key)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "u-" + secrets.token_hex(8),
            "exp": now + 600,
            "iat": now,
            "jti": secrets.token_urlsafe(8),
            "sid": secrets.token_hex(16),
            "name": "Test User",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def make(
        self, *, headers: dict[str, Any] | None = None, key: Any = None, algorithm: str | None = None, **claims: Any
    ) -> str:
        header = {"typ": "at+jwt", "kid": self.kid, **(headers or {})}
        return jwt.encode(
            self.claims(**claims), key or self.private_key, algorithm=algorithm or self.algorithm, headers=header
        )

    def bearer(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.make(**claims)}"}
