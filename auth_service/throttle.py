"""Login throttling, counted in Redis: per account and address, and per account across addresses.

Three counters, each a fixed window of `window` seconds, all counted before the password is
checked so that parallel guesses cannot slip through:

- (account, address): `max_failures` attempts; it stops one address from guessing one password.
- the account, for browsers without a device cookie of it: `account_max_failures` attempts
  from all addresses together; it slows a guesser that rotates through many addresses.
- (account, device cookie): `max_failures` attempts; a browser that logged in to the account
  before is exempt from the account-wide ceiling (the owner is not locked out by an attack), but
  a stolen or replayed device cookie still gets only a few guesses.
"""

from __future__ import annotations

import hashlib

from shared.redis_client import RedisClient

# Undo this attempt's count on the account-wide counter, but never bring a key back to life.
_UNCOUNT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class LoginThrottle:
    def __init__(
        self, client: RedisClient, *, prefix: str, max_failures: int, account_max_failures: int, window: int
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.max_failures = max_failures
        self.account_max_failures = account_max_failures
        self.window = window
        self._uncount = client.register_script(_UNCOUNT)

    def _key(self, kind: str, email_key: str, *parts: str) -> str:
        # Hashed, so Redis holds no email address, IP or cookie in clear. An account's counters share
        # a hash tag (one Cluster slot), so one transaction counts them together.
        def digest(*values: str) -> str:
            return hashlib.sha256("\0".join(values).encode()).hexdigest()[:32]

        return f"{self.prefix}login-attempts:{{{digest(email_key)[:16]}}}:{kind}:{digest(email_key, *parts)}"

    def _counters(self, email_key: str, address: str, device: str | None) -> list[tuple[str, int]]:
        by_address = (self._key("address", email_key, address), self.max_failures)
        if device is not None:
            return [by_address, (self._key("device", email_key, device), self.max_failures)]
        return [by_address, (self._key("account", email_key), self.account_max_failures)]

    def begin_attempt(self, email_key: str, address: str, device: str | None = None) -> int | None:
        """Count an attempt before checking the password; return seconds to wait when over a limit.

        `device` is the nonce of a recognised device cookie for this account, if any.
        """
        counters = self._counters(email_key, address, device)
        pipe = self.redis.pipeline(transaction=True)
        for key, _ in counters:
            pipe.incr(key)
            pipe.expire(key, self.window, nx=True)
            pipe.ttl(key)
        results = pipe.execute()  # incr, expire, ttl for each counter in turn
        waits = [max(int(results[3 * n + 2]), 1) for n, (_, limit) in enumerate(counters) if results[3 * n] > limit]
        return max(waits) if waits else None

    def succeeded(self, email_key: str, address: str, device: str | None = None) -> None:
        """Forget this address's (and device's) failures; a success is not counted account-wide."""
        (address_key, _), (other_key, _) = self._counters(email_key, address, device)
        if device is not None:
            self.redis.delete(address_key, other_key)
        else:
            self.redis.delete(address_key)
            self._uncount(keys=[other_key])
