"""Device cookies: "this browser has logged in to this account before" (OWASP's defence against
distributed password guessing that never locks the owner out).

A successful login hands the browser a signed entry for that account. Later logins that present
one are held only to the limits of their own entry, while everyone else shares the account-wide
ceiling, so an attacker guessing from thousands of addresses cannot lock out the owner's browsers.

The cookie holds up to `MAX_ENTRIES` entries (most recent first), one per account used in that
browser, each `<nonce>.<mac>` with mac = HMAC-SHA256(secret, email key, nonce): it names no
account, and only auth, which holds the secret, can make or check one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

DEVICE_COOKIE = "login_device"
MAX_ENTRIES = 5
_MAC_CHARS = 32  # 192 bits of the HMAC, base64url
_MAX_COOKIE_CHARS = MAX_ENTRIES * 60
_ENTRY = re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{32}")


class LoginDevices:
    """Issue and recognise device-cookie entries under one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, email_key: str, nonce: str) -> str:
        digest = hmac.new(self._secret, f"login-device\0{email_key}\0{nonce}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode()[:_MAC_CHARS]

    def recognise(self, email_key: str, cookie: str | None) -> str | None:
        """Return the nonce of the cookie's entry for this account, or None when it has none."""
        if not cookie or len(cookie) > _MAX_COOKIE_CHARS:
            return None
        for entry in cookie.split("~")[:MAX_ENTRIES]:
            nonce, _, mac = entry.partition(".")
            if nonce and hmac.compare_digest(mac.encode(), self._mac(email_key, nonce).encode()):
                return nonce
        return None

    def issue(self, email_key: str, cookie: str | None) -> str:
        """Return the cookie value after a successful login: a fresh entry for this account first,
        then the other accounts' entries the browser already had."""
        nonce = secrets.token_urlsafe(16)
        own = self.recognise(email_key, cookie)
        others = [
            entry
            for entry in (cookie or "").split("~")[:MAX_ENTRIES]
            if _ENTRY.fullmatch(entry) and entry.partition(".")[0] != own
        ]
        return "~".join([f"{nonce}.{self._mac(email_key, nonce)}", *others][:MAX_ENTRIES])
