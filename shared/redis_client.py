"""One Redis URL, three topologies: a standalone server, a Sentinel-managed primary, or a Cluster.

    redis://[[user]:password@]host:port[/db]          (rediss:// for TLS)   standalone
    redis+sentinel://[[user]:password@]host:port,host:port/<master name>[/db]  Sentinel
    redis+cluster://[[user]:password@]host:port,host:port                      Cluster (seed nodes)

The clients are redis-py's own (`Redis`, `Sentinel.master_for`, `RedisCluster`); this module only
reads the URL, sets the timeouts, and adds what none of them does: writes confirmed by replicas.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import parse_qs, unquote

import redis
from redis._parsers.encoders import Encoder
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

Topology = Literal["standalone", "sentinel", "cluster"]
RedisClient = redis.Redis | RedisCluster

# Each attempt at a Redis call gives up after this long, and a failed call is retried once, so a
# gone or frozen Redis costs a request about REDIS_TIMEOUT_SECONDS * (1 + REDIS_RETRIES): 2 s.
REDIS_TIMEOUT_SECONDS = 1.0
REDIS_RETRIES = 1
# How long a write waits for its replicas (WAIT) before the request answers 503 instead: far above
# a healthy replica's lag (well under a millisecond on one network), far below a client's patience.
DEFAULT_ACK_TIMEOUT_MS = 500


class ReplicasNotConfirmed(redis.exceptions.ConnectionError):
    """The write happened on the primary, but too few replicas confirmed it in time: a failover now
    could lose it, so it must not be acknowledged to the client."""


# What a Redis outage or a failover in progress raises: the service answers 503 with Retry-After.
REDIS_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,  # includes AuthenticationError, BusyLoadingError, ReplicasNotConfirmed
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,  # and MasterDownError: a slot's primary is gone, no replica promoted yet
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,  # a write reached a primary that was just demoted
    redis.exceptions.SlotNotCoveredError,
)

_SCHEMES: dict[str, Topology] = {
    "redis": "standalone",
    "rediss": "standalone",
    "unix": "standalone",
    "redis+sentinel": "sentinel",
    "redis+cluster": "cluster",
}
EXAMPLES = (
    "redis://127.0.0.1:6379/0, redis+sentinel://host:26379,host:26380/mymaster/0 or redis+cluster://host:7000,host:7001"
)


@dataclass(frozen=True, slots=True)
class RedisUrl:
    """A parsed REDIS_URL; `nodes` are the sentinels (sentinel) or the seed nodes (cluster)."""

    topology: Topology
    url: str = field(repr=False)
    nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    master_name: str = ""
    db: int = 0
    sentinel_password: str | None = field(default=None, repr=False)


def parse_redis_url(url: str) -> RedisUrl:
    """Read a Redis URL of any topology; raise ValueError saying what is wrong (never echoing a password)."""
    scheme, sep, rest = url.partition("://")
    topology = _SCHEMES.get(scheme.lower()) if sep else None
    if topology is None:
        raise ValueError(f"not a Redis URL (expected {EXAMPLES})")
    if topology == "standalone":
        from redis.connection import parse_url

        try:
            options = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
        except ValueError:
            raise ValueError(f"not a Redis URL (expected {EXAMPLES})") from None
        return RedisUrl("standalone", url, db=int(options.get("db", 0)))

    location, _, query = rest.partition("?")
    netloc, _, path = location.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username, password = None, None
    if at:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    nodes = tuple(_host_port(item, scheme) for item in hosts.split(","))
    parts = [unquote(p) for p in path.split("/") if p]
    options = parse_qs(query, keep_blank_values=True)
    if set(options) - {"sentinel_password"}:
        raise ValueError(f"unknown option(s) {sorted(set(options) - {'sentinel_password'})}; only sentinel_password")
    if topology == "cluster":
        if parts not in ([], ["0"]) or options:
            raise ValueError("a Redis Cluster URL names seed nodes only: redis+cluster://host:port,host:port")
        return RedisUrl("cluster", url, nodes, username, password)
    if not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("a Sentinel URL ends in /<master name>[/db], e.g. redis+sentinel://host:26379/mymaster/0")
    sentinel_password = options.get("sentinel_password", [None])[0]
    db = int(parts[1]) if len(parts) == 2 else 0
    return RedisUrl("sentinel", url, nodes, username, password, parts[0], db, sentinel_password)


def _host_port(item: str, scheme: str) -> tuple[str, int]:
    host, colon, port = item.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{scheme}:// lists host:port pairs separated by commas; {item!r} is not one")
    return host.strip("[]"), int(port)


def create_redis_client(
    url: str,
    *,
    socket_timeout: float = REDIS_TIMEOUT_SECONDS,
    decode_responses: bool = False,
) -> RedisClient:
    """A pooled client of the URL's topology that fails within about two seconds instead of hanging."""
    target = parse_redis_url(url)
    # No health_check_interval: its PING on a fresh connection doubles the time a hung Redis costs.
    # One retry covers connections that went stale when Redis restarted or failed over.
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        "socket_keepalive": True,
        "retry": Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=REDIS_RETRIES),
        "decode_responses": decode_responses,
    }
    if target.topology == "standalone":
        return redis.Redis.from_url(url, **options)
    credentials: dict[str, Any] = {"username": target.username, "password": target.password}
    if target.topology == "sentinel":
        sentinel_options = {k: v for k, v in options.items() if k != "decode_responses"}
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.nodes),
            sentinel_kwargs={**sentinel_options, "password": target.sentinel_password},
            **options,
            **credentials,
            db=target.db,
        )
        master: redis.Redis = sentinel.master_for(target.master_name)  # type: ignore[no-untyped-call]
        return master
    seeds = [ClusterNode(host, port) for host, port in target.nodes]  # type: ignore[no-untyped-call]
    lazy = _LazyCluster(
        lambda: RedisCluster(startup_nodes=seeds, **options, **credentials), decode_responses=decode_responses
    )
    return cast(RedisCluster, lazy)  # it stands in for the RedisCluster it builds


class _LazyCluster:
    """A RedisCluster built on first use. redis-py's connects to the seed nodes in its constructor and
    fails there; a service must start while Redis is down and answer 503 until it is back."""

    def __init__(self, build: Callable[[], RedisCluster], *, decode_responses: bool) -> None:
        self._build = build
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        self._encoder = Encoder("utf-8", "strict", decode_responses)  # type: ignore[no-untyped-call]

    def client(self) -> RedisCluster:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._build()
                    except redis.exceptions.RedisClusterException as exc:
                        raise redis.exceptions.ConnectionError(f"Redis Cluster unreachable: {exc}") from None
        return self._client

    def get_encoder(self) -> Encoder:  # what redis-py's Script asks its client for, before any call
        return self._encoder

    def register_script(self, script: str) -> Script:
        return Script(self, script)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client(), name)


def cluster_of(client: object) -> RedisCluster | None:
    """The RedisCluster behind a client of any topology, or None when it is not a cluster."""
    if isinstance(client, _LazyCluster):
        return client.client()
    return client if isinstance(client, RedisCluster) else None


def is_cluster(client: object) -> bool:
    return isinstance(client, (_LazyCluster, RedisCluster))


class ReplicatedWrites:
    """Writes acknowledged only once `min_replicas` replicas have them (Redis WAIT).

    Replication is asynchronous: a primary that fails right after a write may be replaced by a
    replica that never saw it. A session token handed out then would vanish, and its holder be
    logged out; a logout would come undone. So each write that a client is told about is followed
    by WAIT on the same connection (WAIT counts what that connection wrote, so both go in one
    pipeline); if too few replicas confirm it in `timeout_ms`, ReplicasNotConfirmed is raised and
    the request answers 503. Retrying is safe: every write here is idempotent for its caller.

    `min_replicas=None` picks the topology's default: 1 behind Sentinel, 1 on a Cluster whose
    primaries have replicas, 0 on a standalone server.
    """

    def __init__(
        self, client: RedisClient, *, min_replicas: int | None, timeout_ms: int = DEFAULT_ACK_TIMEOUT_MS
    ) -> None:
        self.client = client
        self.timeout_ms = timeout_ms
        self._min_replicas = min_replicas
        self._cluster_stale = False

    @property
    def min_replicas(self) -> int:
        if self._min_replicas is None:
            if isinstance(self.client, redis.Redis):
                self._min_replicas = 1 if isinstance(self.client.connection_pool, SentinelConnectionPool) else 0
            else:
                cluster = cluster_of(self.client)
                self._min_replicas = 1 if cluster is not None and cluster.get_replicas() else 0  # type: ignore[no-untyped-call]
        return self._min_replicas

    def write(self, key: str, command: Callable[[Any], object]) -> Any:
        """Run one write command (`command(client)` calls it on the client it is given) on the
        primary that holds `key`, then wait for the replicas; return the command's reply."""
        if self.min_replicas == 0:
            return command(self.client)
        for attempt in (1, 2):
            pipe = self._primary_for(key).pipeline(transaction=False)
            command(pipe)  # queued; a registered script is loaded on the pipeline's connection if missing
            pipe.wait(self.min_replicas, self.timeout_ms)
            try:
                reply, confirmed = pipe.execute()
                break
            except redis.exceptions.MovedError:
                self._cluster_stale = True  # a failover moved the slot: ask the cluster, then once more
                if attempt == 2:
                    raise redis.exceptions.TryAgainError("the slot is moving") from None
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                self._cluster_stale = True  # its primary is gone: learn the new map on the next write
                raise
        if confirmed < self.min_replicas:
            raise ReplicasNotConfirmed(f"{confirmed} of {self.min_replicas} replicas confirmed the write in time")
        return reply

    def run_script(self, script: Script, keys: list[str], args: list[str | int]) -> Any:
        """Run a registered Lua script as a confirmed write; its keys must share one slot."""
        if self.min_replicas == 0:
            return script(keys=keys, args=args)

        # EVALSHA alone: a pipeline handed the Script object asks SCRIPT EXISTS before every run, a
        # round trip that costs more than the WAIT it travels with (bench/redis_topologies.py).
        def evalsha(pipe: redis.client.Pipeline) -> object:
            return pipe.evalsha(script.sha, len(keys), *keys, *args)

        try:
            return self.write(keys[0], evalsha)
        except redis.exceptions.NoScriptError:
            # A primary that never ran it (new, restarted or just promoted): load it there, then run.
            self._primary_for(keys[0]).script_load(script.script)
            return self.write(keys[0], evalsha)

    def _primary_for(self, key: str) -> redis.Redis:
        cluster = cluster_of(self.client)
        if cluster is None:
            return self.client  # type: ignore[return-value]  # standalone or Sentinel: a redis.Redis
        if self._cluster_stale:
            self._cluster_stale = False
            cluster.nodes_manager.initialize()
        node = cluster.get_node_from_key(key, replica=False)  # type: ignore[no-untyped-call]
        return cluster.get_redis_connection(node)
