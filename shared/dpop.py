"""DPoP proofs (RFC 9449): check one, and check a DPoP-bound access token's request.

A proof is a compact JWS the client signs with a key that never leaves it; its header carries the
public key (`jwk`), its claims say which request it is for (`htm`, `htu`), when (`iat`), that it
is used once (`jti`), and, sent with an access token, which one (`ath`). Auth binds a session to
the key's RFC 7638 thumbprint (`jkt`); resource services compare an access token's `cnf.jkt` with
the key of the proof that comes with it. The checks follow RFC 9449 §4.3, in its order, and each
refusal is a 401 with code `invalid_dpop_proof` (or `use_dpop_nonce`) and a `DPoP` challenge.

`jti` replay is checked through a `ReplayCache`: auth keeps them in Redis (shared by its
replicas); a resource service keeps them in memory per process (a proof replayed at another
process within the window passes there; it still needs the bound token and is good for the one
`htm`/`htu` it was made for, for at most the window).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from werkzeug.datastructures import Headers

from shared.problems import Problem

PROOF_TYPE = "dpop+jwt"
MAX_PROOF_LENGTH = 8192
# Asymmetric only: `none` and HS* would let anyone make a proof for any key.
PROOF_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA")
_CURVE_OF = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_KEY_TYPE_OF = {"ES256": "EC", "ES384": "EC", "ES512": "EC", "RS256": "RSA", "PS256": "RSA", "EdDSA": "OKP"}
# Members only a private (or symmetric) key has: a proof that carries one is refused.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_JTI_LENGTH = 256


class DpopError(Problem):
    """A 401 with the RFC 9449 `DPoP` challenge; `reason` is a short name for the security log."""

    def __init__(self, code: str, detail: str, *, reason: str, nonce: str | None = None) -> None:
        algs = " ".join(PROOF_ALGORITHMS)
        headers = {"WWW-Authenticate": f'DPoP error="{code}", error_description="{detail}", algs="{algs}"'}
        if nonce is not None:
            headers["DPoP-Nonce"] = nonce
        super().__init__(401, code, detail, title="Unauthorized", headers=headers)
        self.reason = reason


def invalid_proof(reason: str, detail: str) -> DpopError:
    return DpopError("invalid_dpop_proof", detail, reason=reason)


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that passed every check: the thumbprint of its key, and its id."""

    jkt: str
    jti: str


class ReplayCache(Protocol):
    def first_use(self, key: str, ttl_ms: int) -> bool:
        """Record `key` for `ttl_ms`; False when it was already recorded (a replay)."""


class Nonces(Protocol):
    def current(self) -> str: ...
    def valid(self, nonce: str) -> bool: ...


class MemoryReplayCache:
    """One process's `jti`s, forgotten when their window has passed; bounded (oldest dropped first).

    Every entry lives as long (one window), so insertion order is expiry order: the expired ones
    are dropped from the front as new ones come, at constant cost per proof."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, key: str, ttl_ms: int) -> bool:
        now = time.monotonic()
        with self._lock:
            while self._seen:
                oldest = next(iter(self._seen))
                if self._seen[oldest] > now and len(self._seen) < self.max_entries:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = now + ttl_ms / 1000
            return True


def b64url_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638: SHA-256 over the key's required members, sorted, without whitespace."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    return b64url_sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())


@functools.lru_cache(maxsize=1024)  # the same few URLs every time
def normalise_url(url: str) -> str:
    """The URL as RFC 9449 §4.3 compares `htu`: no query or fragment, scheme and host in lower case,
    no default port, an empty path as `/` (RFC 3986 §6.2.2 and §6.2.3)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return ""
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def _segment_json(segment: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid_proof("malformed", "The DPoP proof is not a JWS") from None


def _parse_header(segment: str) -> tuple[Any, Any, str]:
    """The header's algorithm, public key and the key's thumbprint; refused unless exactly right."""
    header = _segment_json(segment)
    if not isinstance(header, dict) or set(header) != {"typ", "alg", "jwk"}:
        raise invalid_proof("bad_header", "The DPoP proof header must be exactly typ, alg and jwk")
    if header["typ"] != PROOF_TYPE:
        raise invalid_proof("bad_header", "The DPoP proof's typ must be dpop+jwt")
    alg = header["alg"]
    if alg not in PROOF_ALGORITHMS:
        raise invalid_proof("bad_alg", "The DPoP proof's alg is not an accepted asymmetric algorithm")
    jwk = header["jwk"]
    key = _public_key(alg, jwk)
    return jwt.get_algorithm_by_name(alg), key, jwk_thumbprint(jwk)


def _public_key(alg: str, jwk: Any) -> Any:
    if not isinstance(jwk, dict) or _KEY_TYPE_OF[alg] != jwk.get("kty"):
        raise invalid_proof("bad_key", "The DPoP proof's jwk does not fit its alg")
    if _PRIVATE_MEMBERS.intersection(jwk):
        raise invalid_proof("private_key", "The DPoP proof's jwk must be a public key")
    if alg in _CURVE_OF and jwk.get("crv") != _CURVE_OF[alg]:
        raise invalid_proof("bad_key", "The DPoP proof's jwk does not fit its alg")
    if alg == "EdDSA" and jwk.get("crv") != "Ed25519":
        raise invalid_proof("bad_key", "The DPoP proof's jwk does not fit its alg")
    try:
        key = jwt.PyJWK(jwk, algorithm=alg).key
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        raise invalid_proof("bad_key", "The DPoP proof's jwk is not a usable key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        raise invalid_proof("bad_key", "The DPoP proof's RSA key is too short")
    return key


class ProofVerifier:
    """Check DPoP proofs (RFC 9449 §4.3) against the request they came with."""

    def __init__(
        self,
        *,
        public_origin: str,
        max_age: int = 60,
        leeway: int = 5,
        replay: ReplayCache | None = None,
        nonces: Nonces | None = None,
    ) -> None:
        self.public_origin = public_origin.rstrip("/")
        self.window = max_age + leeway  # seconds either side of now that `iat` may be
        self.replay = replay if replay is not None else MemoryReplayCache()
        self.nonces = nonces
        # A client signs every proof with one key, so its header segment repeats: parsed once, kept
        # (bounded; only headers that passed every header check).
        self._headers: dict[str, tuple[Any, Any, str]] = {}
        self.header_cache_size = 10_000

    def public_url(self, path: str) -> str:
        """The URL the client used, from the configured public origin, never from the Host header."""
        return self.public_origin + path

    def verify(self, proof: str, *, method: str, path: str, access_token: str | None = None) -> Proof:
        """Check `proof` for a request of `method` to `path`; with `access_token`, its `ath` too."""
        if len(proof) > MAX_PROOF_LENGTH:
            raise invalid_proof("too_long", "The DPoP proof is too long")
        if not _COMPACT_JWS.fullmatch(proof):
            raise invalid_proof("malformed", "The DPoP proof is not a compact JWS")
        head, payload, signature = proof.split(".")
        parsed = self._headers.get(head)
        if parsed is None:
            parsed = _parse_header(head)
            if len(self._headers) >= self.header_cache_size:
                with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                    del self._headers[next(iter(self._headers))]
            self._headers[head] = parsed
        algorithm, key, jkt = parsed
        # The signature is checked here rather than by jwt.decode(), whose parsing costs more than
        # the ES256 check itself; the algorithm object does the JWS signature encoding.
        raw_signature = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        try:
            verified = algorithm.verify(f"{head}.{payload}".encode(), key, raw_signature)
        except (ValueError, TypeError):
            verified = False
        if not verified:
            raise invalid_proof("bad_signature", "The DPoP proof's signature does not verify")
        claims = _segment_json(payload)
        if not isinstance(claims, dict):
            raise invalid_proof("bad_claims", "The DPoP proof's claims are not a JSON object")
        jti, htm, htu, iat = (claims.get(name) for name in ("jti", "htm", "htu", "iat"))
        if not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH):
            raise invalid_proof("bad_claims", "The DPoP proof needs a jti")
        if htm != method:
            raise invalid_proof("wrong_htm", "The DPoP proof's htm is not this request's method")
        if not isinstance(htu, str) or normalise_url(htu) != normalise_url(self.public_url(path)):
            raise invalid_proof("wrong_htu", "The DPoP proof's htu is not this request's URL")
        if not isinstance(iat, int) or isinstance(iat, bool) or abs(time.time() - iat) > self.window:
            raise invalid_proof("stale", "The DPoP proof's iat is outside the accepted window")
        if access_token is not None and claims.get("ath") != b64url_sha256(access_token.encode()):
            raise invalid_proof("wrong_ath", "The DPoP proof's ath is not this access token's hash")
        if self.nonces is not None:
            nonce = claims.get("nonce")
            if not (isinstance(nonce, str) and self.nonces.valid(nonce)):
                raise DpopError(
                    "use_dpop_nonce",
                    "Sign the DPoP proof with the nonce in DPoP-Nonce",
                    reason="nonce",
                    nonce=self.nonces.current(),
                )
        # Last, so that a proof refused for anything else does not use up its jti.
        if not self.replay.first_use(b64url_sha256(f"{jkt}:{jti}".encode()), 2 * self.window * 1000):
            raise invalid_proof("replayed", "The DPoP proof was used before")
        return Proof(jkt=jkt, jti=jti)


def proof_header(headers: Headers) -> str | None:
    """The request's one DPoP header (None without one); two or more are refused (§4.3 step 1)."""
    # Most requests carry none: one lookup answers that, where getlist() walks every header.
    if headers.get("DPoP") is None:
        return None
    values = headers.getlist("DPoP")
    if len(values) > 1:
        raise invalid_proof("several", "A request carries at most one DPoP proof")
    return values[0] if values else None
