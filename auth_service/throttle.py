"""Per-account, per-address login throttling, counted in Redis."""

from __future__ import annotations

import hashlib

import redis


class LoginThrottle:
    """Allow `max_failures` failed logins per (email, address) in a fixed window, then refuse."""

    def __init__(self, client: redis.Redis, *, prefix: str, max_failures: int, window: int) -> None:
        self.redis = client
        self.prefix = prefix
        self.max_failures = max_failures
        self.window = window

    def _key(self, email_key: str, address: str) -> str:
        # Hashed, so Redis holds no email address or IP in clear.
        digest = hashlib.sha256(f"{email_key}\0{address}".encode()).hexdigest()[:32]
        return f"{self.prefix}login-attempts:{digest}"

    def begin_attempt(self, email_key: str, address: str) -> int | None:
        """Count an attempt before checking the password; return seconds to wait when over the limit.

        Counting first makes concurrent guesses race-free; a successful login clears the count.
        """
        key = self._key(email_key, address)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, self.window, nx=True)
        pipe.ttl(key)
        attempts, _, ttl = pipe.execute()
        if attempts > self.max_failures:
            return max(int(ttl), 1)
        return None

    def succeeded(self, email_key: str, address: str) -> None:
        self.redis.delete(self._key(email_key, address))
