"""Signing keys: generation, RFC 7638 `kid`s, the published JWKS, and rotation.

Layout of the key directory (default `var/keys/`, never committed):
- `signing.pem`: the private key auth signs with (mode 0600, read once at start-up);
- `jwks.json`:   the public keys resource services trust: the current one and retired ones whose
                 tokens may still be unexpired.

    python -m auth_service keys init [--dir var/keys]             # create once, idempotent
    python -m auth_service keys rotate [--dir var/keys] [--drop-old]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
SIGNING_KEY_FILE = "signing.pem"
JWKS_FILE = "jwks.json"
REFRESH_KEY_FILE = "refresh.key"


def rfc7638_thumbprint(public_jwk: dict[str, Any]) -> str:
    """The JWK thumbprint: SHA-256 over the required members, sorted, without whitespace."""
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    members = {name: public_jwk[name] for name in required[public_jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def generate_signing_key() -> SigningKey:
    """A new key for ES256: with verified tokens cached by every verifier, verification is paid
    once per token and process, so signing (once per login and refresh) decides, and ES256 signs
    about 6× faster than RS256 (bench/jwt_algorithms.py, bench/http_bench.py)."""
    return ec.generate_private_key(ec.SECP256R1())


def signing_algorithm(key: SigningKey) -> str:
    """The JWS algorithm a key signs with; older RSA keys keep working as RS256."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256"
    raise ValueError(f"unsupported signing key: {type(key).__name__}")


def public_jwk(private_key: SigningKey) -> dict[str, Any]:
    """The public half of a key as a JWK with `kid`, `alg` and `use`."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        full = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        jwk = {name: full[name] for name in ("kty", "n", "e")}
    else:
        full = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        jwk = {name: full[name] for name in ("kty", "crv", "x", "y")}
    return {**jwk, "kid": rfc7638_thumbprint(jwk), "alg": signing_algorithm(private_key), "use": "sig"}


def load_private_key(path: Path) -> SigningKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"unsupported signing key: {type(key).__name__}")
    signing_algorithm(key)  # refuses curves we cannot sign with
    return key


def read_jwks(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {"keys": []}


def _write_private_key(path: Path, key: SigningKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    tmp.replace(path)


def _write_jwks(path: Path, keys: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": keys}, indent=2) + "\n")
    tmp.replace(path)


def _write_refresh_key(path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    tmp.replace(path)


def load_refresh_key(path: Path) -> bytes:
    """The refresh key: 256 bits, hex, one line."""
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < 32:
        raise ValueError(f"{path} holds {len(key) * 8} bits; the refresh key needs 256")
    return key


def init_keys(directory: Path) -> bool:
    """Create a signing key and its JWKS, and the refresh key, when missing; return whether
    anything was created."""
    directory.mkdir(parents=True, exist_ok=True)
    key_path, jwks_path = directory / SIGNING_KEY_FILE, directory / JWKS_FILE
    created = False
    if not key_path.exists():
        _write_private_key(key_path, generate_signing_key())
        created = True
    if not (directory / REFRESH_KEY_FILE).exists():
        _write_refresh_key(directory / REFRESH_KEY_FILE)
        created = True
    current = public_jwk(load_private_key(key_path))
    published = read_jwks(jwks_path)["keys"]
    if current["kid"] not in {k.get("kid") for k in published}:
        _write_jwks(jwks_path, [current, *published])
        created = True
    return created


def rotate_keys(directory: Path, *, drop_old: bool = False) -> str:
    """Sign with a new key from now on; keep old public keys unless they are compromised."""
    init_keys(directory)
    jwks_path = directory / JWKS_FILE
    new_key = generate_signing_key()
    new_public = public_jwk(new_key)
    retained = [] if drop_old else read_jwks(jwks_path)["keys"]
    # Publish the new public key before signing with it, so verifiers can already fetch it.
    _write_jwks(jwks_path, [new_public, *retained])
    _write_private_key(directory / SIGNING_KEY_FILE, new_key)
    return str(new_public["kid"])


def main(argv: list[str] | None = None, *, on_withdrawn: Callable[[list[str]], None] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_service keys", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["init", "rotate"])
    parser.add_argument("--dir", type=Path, default=Path("var/keys"))
    parser.add_argument("--drop-old", action="store_true", help="forget old public keys (key compromise)")
    args = parser.parse_args(argv)
    if args.command == "init":
        created = init_keys(args.dir)
        print(f"keys in {args.dir}: {'created' if created else 'already present'}")
    else:
        published = [key.get("kid") for key in read_jwks(args.dir / JWKS_FILE)["keys"]]
        kid = rotate_keys(args.dir, drop_old=args.drop_old)
        print(f"signing with new key {kid}; restart the auth service to use it")
        withdrawn = [old for old in published if isinstance(old, str) and old != kid]
        from auth_service import events  # the command's only use of Flask and the metrics

        events.log_as_the_service_does()
        events.signing_key_rotated(kid, withdrawn if args.drop_old else [])
        if args.drop_old and withdrawn and on_withdrawn is not None:
            on_withdrawn(withdrawn)
    return 0
