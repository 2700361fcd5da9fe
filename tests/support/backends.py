"""Private, disposable backends for tests: redis-server on free ports (alone, as a Redis Cluster, or watched by
Sentinel) and fresh PostgreSQL databases."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import redis
from redis.cluster import key_slot, parse_cluster_slots

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


# What redis-server, gunicorn and nginx print when the port they were given was taken meanwhile.
ADDRESS_IN_USE = ("Address already in use", "Connection in use")
# free_port() releases the port before the server binds it, so another process may take it first;
# a server that finds its port taken is started again on a new one, this many times in all.
START_ATTEMPTS = 5


def free_port() -> int:
    """A port that was free a moment ago: callers retry when it is taken by the time they bind."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on, read from /proc (Linux), so a server answering
    on a port is known to be ours and not whoever took the port first."""
    listening: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in rows.readlines()[1:]:
                fields = row.split()
                if fields[3] == "0A":  # TCP_LISTEN
                    listening[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    ports = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:[") and target[8:-1] in listening:
            ports.add(listening[target[8:-1]])
    return ports


class PortTaken(RuntimeError):
    """Another process bound the port between free_port() and the server's own bind."""


class MovesOffATakenPort:
    """`start()` for a server on one port: the first start moves to another port when this one was
    taken meanwhile; a restart keeps its address, which tests rely on."""

    port: int
    process: subprocess.Popen | None

    def _start_on_port(self):
        raise NotImplementedError

    def _move_to_free_ports(self) -> None:
        self.port = free_port()

    def start(self):
        first_start = self.process is None
        for _ in range(START_ATTEMPTS):
            try:
                return self._start_on_port()
            except PortTaken:
                if not first_start:
                    raise
                self._move_to_free_ports()
        raise RuntimeError(f"{type(self).__name__} found {START_ATTEMPTS} ports taken")


class RedisServer(MovesOffATakenPort):
    """A redis-server process of our own, so no test depends on what others left in a shared one."""

    def __init__(self, directory: Path, *, appendonly: bool = False, password: str | None = None) -> None:
        self.directory = directory
        self.appendonly = appendonly
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        credentials = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{credentials}127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **{"password": self.password, **options})

    def _arguments(self) -> list[str]:
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.directory)]
        arguments += ["--appendonly", "yes" if self.appendonly else "no"]
        # A replica's first sync starts at once instead of waiting 5 s for others to join the transfer.
        arguments += ["--repl-diskless-sync-delay", "0"]
        if self.password:
            # masterauth too: any server here may become a replica of another after a failover.
            arguments += ["--requirepass", self.password, "--masterauth", self.password]
        return arguments

    def _start_on_port(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.directory.mkdir(parents=True, exist_ok=True)
        log_path = self.directory / f"redis-{self.port}.log"
        with log_path.open("wb") as log:
            self.process = subprocess.Popen([binary, *self._arguments()], stdout=log, stderr=subprocess.STDOUT)
        client = self.client(socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            if self.process.poll() is not None:
                output = log_path.read_text(errors="replace")
                if any(marker in output for marker in ADDRESS_IN_USE):
                    raise PortTaken(self.port)
                raise RuntimeError(f"redis-server exited:\n{output}")
            if self.port in listening_ports(self.process.pid):
                try:
                    client.ping()
                    return self
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL, as a crash or a lost machine: no shutdown, no last save, no goodbye to the others."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


CLUSTER_SLOTS = 16384


def _start_together(servers: Iterable[MovesOffATakenPort]) -> None:
    """Start servers in parallel threads: each start is mostly waiting for a process to listen."""
    servers = list(servers)
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        list(pool.map(lambda server: server.start(), servers))  # list() re-raises a failed start


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting until {what}")
        time.sleep(0.05)


def _answers(condition: Callable[[], bool]) -> Callable[[], bool]:
    """`condition`, counting a server that does not answer (yet, or any more) as not ready."""

    def checked() -> bool:
        try:
            return condition()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.ResponseError):
            return False

    return checked


def _replica_in_sync(server: RedisServer) -> bool:
    replication = server.client(socket_timeout=1).info("replication")
    return (
        replication["role"] == "slave"
        and replication["master_link_status"] == "up"
        and not replication["master_sync_in_progress"]
    )


def _stop_together(servers: Iterable[RedisServer]) -> None:
    running = [server for server in servers if server.running]
    for server in running:
        assert server.process is not None
        server.process.terminate()
    for server in running:
        server.stop()


class RedisClusterNode(RedisServer):
    """redis-server with `--cluster-enabled yes`; its cluster bus gets a free port of its own, not port + 10000."""

    def __init__(self, directory: Path, *, password: str | None, node_timeout_ms: int) -> None:
        super().__init__(directory, password=password)
        self.node_timeout_ms = node_timeout_ms
        self.bus_port = self._free_port_other_than(self.port)

    @staticmethod
    def _free_port_other_than(port: int) -> int:
        while (other := free_port()) == port:
            pass
        return other

    def _move_to_free_ports(self) -> None:
        self.port = free_port()
        self.bus_port = self._free_port_other_than(self.port)

    def _arguments(self) -> list[str]:
        return [
            *super()._arguments(),
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self.bus_port),
            "--cluster-node-timeout",
            str(self.node_timeout_ms),
        ]

    def nodes(self) -> dict[str, dict[str, Any]]:
        """CLUSTER NODES as this node sees the cluster: "127.0.0.1:port" -> id, flags, master id, slots."""
        return self.client(socket_timeout=1).cluster("NODES")


class RedisClusterServers:
    """A Redis Cluster of six redis-server processes, three primaries with one replica each, made by
    `redis-cli --cluster create`; when a primary dies the cluster itself promotes its replica.
    Named apart from redis-py's RedisCluster, the client the tests use to talk to it."""

    SIZE = 6

    def __init__(self, directory: Path, *, password: str | None = None, node_timeout_ms: int = 1000) -> None:
        self.directory = directory
        self.password = password
        self.nodes = [
            RedisClusterNode(directory / f"node-{index}", password=password, node_timeout_ms=node_timeout_ms)
            for index in range(self.SIZE)
        ]
        self._failover: tuple[RedisClusterNode, float] | None = None

    @property
    def url(self) -> str:
        credentials = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis+cluster://{credentials}{','.join(node.address for node in self.nodes)}"

    def start(self) -> RedisClusterServers:
        try:
            _start_together(self.nodes)
            self._create()
            # Replicas show in CLUSTER SLOTS only once they have replicated something: write once.
            self.flush()
            self.wait_until_settled()
        except BaseException:
            self.stop()
            raise
        return self

    def _create(self) -> None:
        env = dict(os.environ)
        if self.password:
            env["REDISCLI_AUTH"] = self.password  # not `-a`: a password in argv shows in `ps`
        create = [
            shutil.which("redis-cli") or "/usr/bin/redis-cli",
            "--cluster",
            "create",
            *(node.address for node in self.nodes),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        ]
        log_path = self.directory / "cluster-create.log"
        with log_path.open("wb") as log:
            created = subprocess.run(create, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=60)
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed:\n{log_path.read_text(errors='replace')}")

    def _live_nodes(self) -> list[RedisClusterNode]:
        return [node for node in self.nodes if node.running]

    def _slots(self, node: RedisClusterNode) -> dict[tuple[int, int], dict[str, Any]]:
        """CLUSTER SLOTS as `node` answers it, the map cluster clients route by: (first, last slot) ->
        primary and replicas as (host, port). Replicas show once they have replicated some write."""
        return parse_cluster_slots(node.client(socket_timeout=1).execute_command("CLUSTER SLOTS"))

    def slot_map(self) -> dict[tuple[int, int], RedisClusterNode]:
        """Which primary serves which slot range, as the first live node sees it."""
        slots = self._slots(self._live_nodes()[0])
        return {slot_range: self._by_port(served["primary"][1]) for slot_range, served in slots.items()}

    def _by_port(self, port: int) -> RedisClusterNode:
        return next(node for node in self.nodes if node.port == port)

    def _settled(self) -> bool:
        """Every live node says cluster_state:ok and routes every slot the same way, to live primaries,
        and lists every other live node as the replica of one, which has caught up with it."""
        live = self._live_nodes()
        if any(node.client(socket_timeout=1).cluster("INFO")["cluster_state"] != "ok" for node in live):
            return False
        views = [self._slots(node) for node in live]
        if any(view != views[0] for view in views):
            return False
        if sum(last - first + 1 for first, last in views[0]) != CLUSTER_SLOTS:
            return False
        primaries = {self._by_port(served["primary"][1]) for served in views[0].values()}
        replicas = {self._by_port(port) for served in views[0].values() for _host, port in served["replicas"]}
        if not all(primary.running for primary in primaries) or replicas != set(live) - primaries:
            return False
        return all(_replica_in_sync(replica) for replica in replicas)

    def wait_until_settled(self, timeout: float = 30) -> None:
        _wait_for(_answers(self._settled), timeout, "the cluster covers every slot and every replica is in sync")

    def primaries(self) -> list[RedisClusterNode]:
        return sorted(set(self.slot_map().values()), key=lambda node: node.port)

    def primary_for(self, key: str | bytes) -> RedisClusterNode:
        """The node that serves `key`'s slot now."""
        slot = key_slot(key.encode() if isinstance(key, str) else key)
        return next(node for (start, end), node in self.slot_map().items() if start <= slot <= end)

    def replica_of(self, primary: RedisClusterNode) -> RedisClusterNode:
        view = self._live_nodes()[0].nodes()
        primary_id = view[primary.address]["node_id"]
        return next(
            self._by_port(int(address.rsplit(":", 1)[1]))
            for address, entry in view.items()
            if entry["master_id"] == primary_id and "fail" not in entry["flags"].split(",")
        )

    def kill_primary(self, primary: RedisClusterNode) -> RedisClusterNode:
        """SIGKILL `primary`; returns the replica expected to take over its slots."""
        assert primary in self.primaries(), f"{primary.address} serves no slots"
        replica = self.replica_of(primary)
        self._failover = (replica, time.monotonic())
        primary.kill()
        return replica

    def wait_for_failover(self, timeout: float = 30) -> float:
        """Seconds from kill_primary() until the replica is a primary and every live node says the
        cluster is ok again with the same slot map."""
        assert self._failover, "kill_primary() first"
        replica, killed_at = self._failover

        def promoted() -> bool:
            return replica.client(socket_timeout=1).info("replication")["role"] == "master" and self._settled()

        _wait_for(_answers(promoted), timeout, f"{replica.address} is promoted and the cluster is ok")
        self._failover = None
        return time.monotonic() - killed_at

    def restart(self, node: RedisClusterNode, timeout: float = 30) -> float:
        """Start a killed node again on its address; it rejoins as a replica. Returns seconds until in sync."""
        started = time.monotonic()
        node.start()
        _wait_for(_answers(lambda: _replica_in_sync(node) and self._settled()), timeout, f"{node.address} rejoins")
        return time.monotonic() - started

    def flush(self) -> None:
        """FLUSHALL on every primary, and wait until their replicas have it too."""
        for primary in self.primaries():
            client = primary.client(socket_timeout=5)
            client.flushall()
            client.wait(client.info("replication")["connected_slaves"], 1000)

    def stop(self) -> None:
        _stop_together(self.nodes)

    def __enter__(self) -> RedisClusterServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SentinelServer(RedisServer):
    """`redis-server sentinel.conf --sentinel` watching one primary; it takes no password itself."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.config_path = directory / "sentinel.conf"
        self.sentinel_config = ""  # set once the primary's port is final

    def _arguments(self) -> list[str]:
        return [str(self.config_path), "--sentinel", "--port", str(self.port), "--bind", "127.0.0.1"]

    def _start_on_port(self) -> RedisServer:
        # Sentinel rewrites its file with what it learns: a restart keeps that, as in production.
        if not self.config_path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            self.config_path.write_text(self.sentinel_config)
        return super()._start_on_port()


class RedisSentinelServers:
    """One primary, its replicas (REPLICAOF) and three sentinels (quorum 2) that promote a replica
    when the primary stops answering for `down_after_ms`. No min-replicas-to-write: the app's WAIT
    decides what counts as acknowledged."""

    SENTINELS = 3
    QUORUM = 2

    def __init__(
        self,
        directory: Path,
        *,
        password: str | None = None,
        master_name: str = "silent-auth",
        replicas: int = 1,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 3000,
    ) -> None:
        self.directory = directory
        self.password = password
        self.master_name = master_name
        self.data_servers = [
            RedisServer(directory / f"redis-{index}", password=password) for index in range(1 + replicas)
        ]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinels = [SentinelServer(directory / f"sentinel-{index}") for index in range(self.SENTINELS)]
        self._failover: tuple[RedisServer, float] | None = None

    @property
    def url(self) -> str:
        credentials = f":{quote(self.password, safe='')}@" if self.password else ""
        sentinels = ",".join(sentinel.address for sentinel in self.sentinels)
        return f"redis+sentinel://{credentials}{sentinels}/{quote(self.master_name, safe='')}/0"

    def sentinel_client(self, **options: Any) -> redis.Sentinel:
        """redis-py's own Sentinel client over the three sentinels."""
        addresses = [("127.0.0.1", sentinel.port) for sentinel in self.sentinels]
        return redis.Sentinel(addresses, password=self.password, **options)

    def _sentinel_config(self, primary: RedisServer) -> str:
        name = self.master_name
        lines = [
            f"sentinel monitor {name} 127.0.0.1 {primary.port} {self.QUORUM}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} 1",
        ]
        if self.password:
            lines.append(f"sentinel auth-pass {name} {self.password}")
        return "\n".join(lines) + "\n"

    def start(self) -> RedisSentinelServers:
        try:
            _start_together(self.data_servers)
            primary, *replicas = self.data_servers
            for replica in replicas:
                replica.client().replicaof("127.0.0.1", primary.port)
            for sentinel in self.sentinels:
                sentinel.sentinel_config = self._sentinel_config(primary)
            _start_together(self.sentinels)
            self.wait_until_settled()
        except BaseException:
            self.stop()
            raise
        return self

    def _by_address(self, address: tuple[str, int]) -> RedisServer:
        return next(server for server in self.data_servers if server.port == address[1])

    def primary(self) -> RedisServer:
        """The primary the first sentinel names."""
        address = self.sentinels[0].client(socket_timeout=1).sentinel_get_master_addr_by_name(self.master_name)
        return self._by_address(address)

    def replicas(self) -> list[RedisServer]:
        primary = self.primary()
        return [server for server in self.data_servers if server.running and server is not primary]

    def _settled(self) -> bool:
        """Every sentinel names the same live primary, sees it up, knows the other sentinels and every
        live replica; every replica is in sync."""
        live = [server for server in self.data_servers if server.running]
        for sentinel in self.sentinels:
            client = sentinel.client(socket_timeout=1)
            state = client.sentinel_master(self.master_name)
            if state["flags"] != "master":  # not down, not disconnected, no failover in progress
                return False
            if state["num-other-sentinels"] != self.SENTINELS - 1 or state["num-slaves"] < len(live) - 1:
                return False
            primary = self._by_address((state["ip"], state["port"]))
            if not primary.running:
                return False
            seen_replicas = {
                entry["port"]
                for entry in client.sentinel_slaves(self.master_name)
                if not entry["is_sdown"] and entry["master-link-status"] == "ok"
            }
            if seen_replicas != {server.port for server in live if server is not primary}:
                return False
        return all(_replica_in_sync(server) for server in live if server is not primary)

    def wait_until_settled(self, timeout: float = 30) -> None:
        _wait_for(_answers(self._settled), timeout, "every sentinel knows the primary, its replicas and each other")

    def kill_primary(self) -> RedisServer:
        """SIGKILL the current primary; returns it."""
        primary = self.primary()
        self._failover = (primary, time.monotonic())
        primary.kill()
        return primary

    def wait_for_failover(self, timeout: float = 30) -> float:
        """Seconds from kill_primary() until every sentinel names a new primary and it takes a write
        made through redis-py's Sentinel client. Other replicas may still be switching over to the
        new primary: wait_until_settled() waits for that too."""
        assert self._failover, "kill_primary() first"
        old_primary, killed_at = self._failover
        master = self.sentinel_client(socket_timeout=1).master_for(self.master_name)

        def promoted() -> bool:
            named = {
                sentinel.client(socket_timeout=1).sentinel_get_master_addr_by_name(self.master_name)
                for sentinel in self.sentinels
            }
            if len(named) != 1 or None in named or self._by_address(next(iter(named))) is old_primary:
                return False
            master.set("harness:failover-probe", 1)
            master.delete("harness:failover-probe")
            return True

        _wait_for(_answers(promoted), timeout, "the sentinels promote a replica")
        self._failover = None
        return time.monotonic() - killed_at

    def restart(self, server: RedisServer, timeout: float = 60) -> float:
        """Start a killed server again on its address; the sentinels make it a replica of the new primary.
        Returns seconds until it is in sync: about 20 s for an old primary, which Sentinel converts only
        after its next INFO poll (every 10 s) and 8 s of seeing it up."""
        started = time.monotonic()
        server.start()
        _wait_for(_answers(lambda: _replica_in_sync(server) and self._settled()), timeout, f"{server.address} rejoins")
        return time.monotonic() - started

    def flush(self) -> None:
        """FLUSHALL on the primary, and wait until its replicas have it too."""
        client = self.primary().client(socket_timeout=5)
        client.flushall()
        client.wait(client.info("replication")["connected_slaves"], 1000)

    def stop(self) -> None:
        _stop_together([*self.sentinels, *self.data_servers])

    def __enter__(self) -> RedisSentinelServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _admin_connection() -> psycopg.Connection:
    return psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    name = f"silent_auth_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with _admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
