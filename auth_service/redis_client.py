"""The Redis client auth keeps sessions and throttles in: pooled, and quick to fail."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

REDIS_UNAVAILABLE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# Each attempt at a Redis call gives up after this long, and a failed call is retried once, so a
# gone or frozen Redis costs a request about REDIS_TIMEOUT_SECONDS * (1 + REDIS_RETRIES): 2 s.
REDIS_TIMEOUT_SECONDS = 1.0
REDIS_RETRIES = 1


def create_redis_client(url: str) -> redis.Redis:
    """A pooled client that fails within about two seconds instead of hanging when Redis is gone."""
    # No health_check_interval: its PING on a fresh connection doubles the time a hung Redis costs.
    # One retry covers connections that went stale when Redis restarted.
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=REDIS_RETRIES),
    )
