"""Access-token verification: one implementation for every service.

Keys come from a JWKS (a file, a URL, or a dict), are parsed once, and are pinned to their own
`alg`. Verified tokens are remembered until they expire, so a client that sends the same token
on every call pays for the signature check once; `exp`, the key and the revocation state
(shared/revocations.py) are still checked on every hit, with dict lookups only.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, overload

import jwt
import requests
from flask import g, request

from shared.config import ServiceConfig
from shared.dpop import DpopError, ProofVerifier, proof_header
from shared.metrics import ServiceMetrics
from shared.problems import Problem
from shared.revocations import RevocationState
from shared.service_context import ServiceContext

log = logging.getLogger("shared.access_tokens")

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - the JWT type of RFC 9068, not a secret
# Asymmetric algorithms only: an HS* or `none` key in a JWKS is ignored, never trusted.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "jti", "sid")
# The outcome label of access_token_verifications_total for each refusal code.
VERIFICATION_OUTCOMES = {
    "token_missing": "missing",
    "token_expired": "expired",
    "token_revoked": "revoked",
    "invalid_token": "invalid",
}
# Headers that point at other keys; our issuer never sets them, so a token carrying one is forged.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
MAX_TOKEN_LENGTH = 8192
_KID = re.compile(r"[A-Za-z0-9_-]{1,128}")


class TokenError(Problem):
    """A 401 with the RFC 6750 challenge that docs/API.md prescribes."""

    def __init__(self, code: str, detail: str) -> None:
        challenge = 'Bearer realm="api"'
        if code != "token_missing":
            challenge += f', error="invalid_token", error_description="{detail}"'
        super().__init__(401, code, detail, title="Unauthorized", headers={"WWW-Authenticate": challenge})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made the request, as the access token says."""

    id: str
    name: str
    session_id: str
    token_id: str
    expires_at: int
    issued_at: int = 0
    key_id: str = ""
    # RFC 9449 `cnf.jkt`: the thumbprint of the key a DPoP-bound token must be presented with.
    confirmation: str = ""


class JwksKeys:
    """Public verification keys by `kid`, from a JWKS file and/or URL, refreshed with a cooldown.

    Each source keeps the keys it published last: a source that answers replaces its keys (so a
    key it no longer publishes is dropped), a source that cannot be read now keeps its old ones.
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        url: str | None = None,
        jwks: dict[str, Any] | None = None,
        refetch_cooldown: float = 30.0,
        fetch_timeout: float = 2.0,
    ) -> None:
        self.path = path
        self.url = url
        self.refetch_cooldown = refetch_cooldown
        self.fetch_timeout = fetch_timeout
        self._keys: dict[str, tuple[str, Any]] = {}
        self._by_source: dict[str, dict[str, tuple[str, Any]]] = {}
        self._last_refetch = float("-inf")
        self._refetch_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.metrics: ServiceMetrics | None = None  # set by the app: reads after start-up are counted
        if jwks is not None:
            self._by_source["given"] = self.parse(jwks)
        self.reload()

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, kid: str) -> bool:
        """Whether `kid` is trusted now, without fetching anything (the hot path asks this)."""
        return kid in self._keys

    def get(self, kid: str) -> tuple[str, Any] | None:
        """Return (alg, key) for `kid`, refetching at most once per cooldown when it is unknown."""
        found = self._keys.get(kid)
        if found is None and self._refetch_allowed():
            self.reload()
            found = self._keys.get(kid)
        return found

    def _refetch_allowed(self) -> bool:
        # The start-up load does not count: a key introduced just before we started is fetched at once.
        with self._refetch_lock:
            now = time.monotonic()
            if now - self._last_refetch < self.refetch_cooldown:
                return False
            self._last_refetch = now
            return True

    def reload(self) -> None:
        """Re-read the file and the URL; a source that cannot be read now keeps the keys it had."""
        with self._reload_lock:
            for source, load in (("file", self._read_file), ("url", self._fetch_url)):
                try:
                    document = load()
                except (OSError, ValueError) as exc:
                    log.warning("JWKS %s unavailable: %s", source, exc)
                    self._count_read("failed")
                    continue
                if document is not None:
                    self._count_read("ok")
                    # A rotation keeps the old public key published while its tokens may be
                    # valid; a key that is gone was withdrawn (--drop-old) and is dropped here.
                    self._by_source[source] = self.parse(document)
            # One new dict swapped in: readers never see it half built.
            self._keys = {kid: key for keys in self._by_source.values() for kid, key in keys.items()}

    def _count_read(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.jwks_read(outcome)

    def _read_file(self) -> dict[str, Any] | None:
        if self.path is None or not self.path.exists():
            return None
        document: dict[str, Any] = json.loads(self.path.read_text())
        return document

    def _fetch_url(self) -> dict[str, Any] | None:
        if not self.url:
            return None
        # With requests, whose calls shared/tracing.py traces; its errors are OSErrors.
        body = b""
        with requests.get(self.url, timeout=self.fetch_timeout, stream=True) as response:
            response.raise_for_status()
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) > 1024 * 1024:
                    raise ValueError("the JWKS document is over 1 MiB")
        document: dict[str, Any] = json.loads(body)
        return document

    @staticmethod
    def parse(jwks: dict[str, Any]) -> dict[str, tuple[str, Any]]:
        """Turn a JWKS document into {kid: (alg, key object)}, skipping unusable keys."""
        keys: dict[str, tuple[str, Any]] = {}
        for jwk in jwks.get("keys", []) if isinstance(jwks, dict) else []:
            if not isinstance(jwk, dict):
                continue
            kid, alg = jwk.get("kid"), jwk.get("alg")
            if not isinstance(kid, str) or alg not in ASYMMETRIC_ALGORITHMS or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[kid] = (alg, jwt.PyJWK(jwk, algorithm=alg).key)
            except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError) as exc:
                log.warning("skipping JWKS key %s: %s", kid, exc)
        return keys


class AccessTokenVerifier:
    """Verify access tokens against pinned keys and claims; remember the good ones until `exp`."""

    def __init__(
        self,
        keys: JwksKeys,
        *,
        issuer: str,
        audience: str,
        leeway: int = 5,
        cache_size: int = 10_000,
        revocations: RevocationState | None = None,
        proofs: ProofVerifier | None = None,
    ) -> None:
        self.keys = keys
        # DPoP-bound tokens come with a proof; its `jti`s are remembered per process (shared/dpop.py).
        self.proofs = proofs if proofs is not None else ProofVerifier(public_origin=issuer, leeway=leeway)
        self.revocations = revocations if revocations is not None else RevocationState()
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.cache_size = cache_size
        self._verified: dict[str, Caller] = {}
        self.metrics: ServiceMetrics | None = None

    def report_to(self, metrics: ServiceMetrics) -> None:
        """Count verifications, signature checks and JWKS reads in `metrics` from now on."""
        self.metrics = self.keys.metrics = metrics

    @classmethod
    def from_config(cls, config: ServiceConfig) -> AccessTokenVerifier:
        """The verifier a resource service uses: keys from its JWKS file and/or URL."""
        keys = JwksKeys(path=config.jwks_path, url=config.jwks_url, refetch_cooldown=config.jwks_refetch_cooldown)
        return cls(
            keys,
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            leeway=config.jwt_leeway,
            cache_size=config.verified_token_cache_size,
            revocations=RevocationState(),
            proofs=ProofVerifier(
                public_origin=config.public_origin, max_age=config.dpop_proof_max_age, leeway=config.jwt_leeway
            ),
        )

    def verify(self, token: str) -> Caller:
        caller = self._verified.get(token)
        if caller is None:
            caller = self._verify_signature_and_claims(token)
            if self.cache_size:
                if len(self._verified) >= self.cache_size:
                    self._evict_oldest()
                self._verified[token] = caller
        # Cached or not: the cache must not outlive the key, nor the session. Checked before `exp`
        # so that a client holding an expired token of an ended session learns not to refresh.
        if caller.key_id not in self.keys or self.revocations.key_withdrawn(caller.key_id):
            self._verified.pop(token, None)
            raise TokenError("invalid_token", "The token was signed by a key that is no longer trusted")
        refusal = self.revocations.refusal(caller)
        if refusal is not None:
            raise TokenError("token_revoked", refusal)
        if time.time() > caller.expires_at + self.leeway:
            self._verified.pop(token, None)
            raise TokenError("token_expired", "The access token expired")
        return caller

    def _evict_oldest(self) -> None:
        # Dicts keep insertion order. No lock on the hot path: another thread changing the dict
        # between iter() and next() only costs this one eviction.
        with contextlib.suppress(StopIteration, KeyError, RuntimeError):
            del self._verified[next(iter(self._verified))]

    def _verify_signature_and_claims(self, token: str) -> Caller:
        if self.metrics is not None:
            self.metrics.signature_checked()
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("invalid_token", "The access token is too long")
        header = _unverified_header(token)
        if header.get("typ") != ACCESS_TOKEN_TYPE:
            raise TokenError("invalid_token", "The token is not an access token")
        if FORBIDDEN_HEADERS.intersection(header):
            raise TokenError("invalid_token", "The token header is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID.fullmatch(kid):
            raise TokenError("invalid_token", "The token has no valid key id")
        found = self.keys.get(kid)
        if found is None:
            raise TokenError("invalid_token", "The token was signed by an unknown key")
        alg, key = found
        if header.get("alg") != alg:
            raise TokenError("invalid_token", "The token algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": list(REQUIRED_CLAIMS), "verify_exp": False},
            )
        except jwt.PyJWTError:
            raise TokenError("invalid_token", "The access token is invalid") from None
        # `exp` is checked by verify() on every call, cached or not, so expiry is always exact.
        sub, sid, jti, name, exp, iat = (claims.get(k) for k in ("sub", "sid", "jti", "name", "exp", "iat"))
        if not (isinstance(sub, str) and isinstance(sid, str) and isinstance(jti, str) and sub and sid and jti):
            raise TokenError("invalid_token", "The access token claims are malformed")
        if not (isinstance(exp, int) and isinstance(iat, int)):
            raise TokenError("invalid_token", "The access token claims are malformed")
        confirmation = claims.get("cnf", {})
        jkt = confirmation.get("jkt", "") if isinstance(confirmation, dict) else None
        if not isinstance(jkt, str):
            raise TokenError("invalid_token", "The access token claims are malformed")
        return Caller(
            id=sub,
            name=name if isinstance(name, str) else "",
            session_id=sid,
            token_id=jti,
            expires_at=exp,
            issued_at=iat,
            key_id=kid,
            confirmation=jkt,
        )


def _unverified_header(token: str) -> dict[str, Any]:
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TokenError("invalid_token", "The access token is malformed") from None
    if not isinstance(header, dict):
        raise TokenError("invalid_token", "The access token is malformed")
    return header


def _authorization() -> tuple[str, str]:
    """The current request's scheme (lower case: `bearer` or `dpop`) and token; token_missing without one."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in {"bearer", "dpop"}:
        raise TokenError("token_missing", "An access token is required")
    token = token.strip()
    if not token:
        raise TokenError("invalid_token", "The access token is empty")
    return scheme, token


def bearer_token() -> str:
    """Return the access token of the current request (Bearer or DPoP), or raise token_missing."""
    return _authorization()[1]


def check_binding(verifier: AccessTokenVerifier, caller: Caller, scheme: str, token: str) -> None:
    """A DPoP-bound token (`cnf.jkt`) needs the DPoP scheme and a proof of its key with its `ath`;
    an unbound one is a Bearer token (RFC 9449 §7)."""
    if not caller.confirmation:
        if scheme == "dpop":
            raise DpopError("invalid_token", "The access token is not DPoP-bound: send it as Bearer", reason="unbound")
        return
    if scheme != "dpop":
        raise DpopError("invalid_token", "The access token is DPoP-bound: send it as DPoP", reason="as_bearer")
    proof = proof_header(request.headers)
    if proof is None:
        raise DpopError("invalid_dpop_proof", "A DPoP proof is required with this token", reason="missing")
    checked = verifier.proofs.verify(proof, method=request.method, path=request.path, access_token=token)
    if checked.jkt != caller.confirmation:
        raise DpopError("invalid_dpop_proof", "The DPoP proof is not signed by the token's key", reason="wrong_key")


def authenticate(still_active: Callable[[Caller], bool] | None = None) -> Caller:
    """Verify the current request's access token (Bearer, or DPoP with its proof) with the app's
    verifier and remember the caller; `still_active` may refuse a valid token whose session ended
    (auth asks its session store). Each call counts one outcome in access_token_verifications_total
    (a refused DPoP proof counts as `invalid`)."""
    verifier = ServiceContext.of().verifier
    try:
        scheme, token = _authorization()
        caller = verifier.verify(token)
        check_binding(verifier, caller, scheme, token)
        if still_active is not None and not still_active(caller):
            raise TokenError("token_revoked", "The session of this token has ended")
    except (TokenError, DpopError) as refusal:
        if verifier.metrics is not None:
            verifier.metrics.token_verified(VERIFICATION_OUTCOMES.get(refusal.code, "invalid"))
        raise
    if verifier.metrics is not None:
        verifier.metrics.token_verified("ok")
    g.caller = caller
    return caller


View = Callable[..., Any]


@overload
def require_caller(view: View, /) -> View: ...
@overload
def require_caller(*, still_active: Callable[[Caller], bool]) -> Callable[[View], View]: ...
def require_caller(
    view: View | None = None, /, *, still_active: Callable[[Caller], bool] | None = None
) -> View | Callable[[View], View]:
    """Decorate a view so it runs only for a valid access token and receives `caller`; with
    `still_active`, used as `@require_caller(still_active=...)`, the token's session must also be live."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return view(*args, caller=authenticate(still_active), **kwargs)

        wrapper.requires_caller = True  # type: ignore[attr-defined]  # read by the OpenAPI builder
        return wrapper

    return decorate(view) if view is not None else decorate
