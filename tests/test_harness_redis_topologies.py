"""The test harness itself: the Redis Cluster and Sentinel set-ups are what they claim, fail over when a
primary dies, and describe themselves with URLs of the forms REDIS_URL accepts."""

from __future__ import annotations

import itertools
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from tests.conftest import TOPOLOGY_PASSWORD
from tests.support.backends import CLUSTER_SLOTS, RedisClusterServers, RedisSentinelServers

# A password URLs must percent-encode: it has every character with a meaning in a URL.
AWKWARD_PASSWORD = "p@ss:w/rd %?#,"


def split_topology_url(url: str) -> tuple[str, str | None, list[tuple[str, int]], str]:
    """Scheme, password, host:port list and path of a multi-host Redis URL, read with urllib alone."""
    parts = urlsplit(url)
    hosts = parts.netloc.rpartition("@")[2]
    addresses = [(host, int(port)) for host, port in (address.rsplit(":", 1) for address in hosts.split(","))]
    password = unquote(parts.password) if parts.password is not None else None
    return parts.scheme, password, addresses, parts.path


def cluster_client(url: str) -> RedisCluster:
    """redis-py's cluster client for a `redis+cluster://` URL."""
    _, password, addresses, _ = split_topology_url(url)
    return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in addresses], password=password)


def sentinel_client(url: str) -> tuple[Sentinel, str]:
    """redis-py's Sentinel client and the master name for a `redis+sentinel://` URL."""
    _, password, addresses, path = split_topology_url(url)
    master_name, _db = path.strip("/").split("/")
    return Sentinel(addresses, password=password, socket_timeout=2), unquote(master_name)


def test_urls_percent_encode_the_password_and_list_every_seed(tmp_path: Path):
    cluster = RedisClusterServers(tmp_path / "cluster", password=AWKWARD_PASSWORD)
    scheme, password, addresses, path = split_topology_url(cluster.url)
    assert (scheme, password, path) == ("redis+cluster", AWKWARD_PASSWORD, "")
    assert addresses == [("127.0.0.1", node.port) for node in cluster.nodes]

    sentinel = RedisSentinelServers(tmp_path / "sentinel", password=AWKWARD_PASSWORD, master_name="auth")
    scheme, password, addresses, path = split_topology_url(sentinel.url)
    assert (scheme, password, path) == ("redis+sentinel", AWKWARD_PASSWORD, "/auth/0")
    assert addresses == [("127.0.0.1", server.port) for server in sentinel.sentinels]

    assert urlsplit(RedisClusterServers(tmp_path / "open").url).netloc.count("@") == 0


def test_cluster_forms_and_covers_every_slot(redis_cluster_url: str, redis_cluster: RedisClusterServers):
    _, password, addresses, _ = split_topology_url(redis_cluster_url)
    assert password == TOPOLOGY_PASSWORD
    assert len(addresses) == 6
    for host, port in addresses:
        node = redis.Redis(host=host, port=port, password=password)
        info = node.cluster("INFO")
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_ok"]) == CLUSTER_SLOTS
        assert int(info["cluster_known_nodes"]) == 6
        assert int(info["cluster_size"]) == 3  # primaries serving slots
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host=host, port=port, retry=None).ping()

    slots = cluster_client(redis_cluster_url).cluster_slots()
    assert sum(end - start + 1 for start, end in slots) == CLUSTER_SLOTS
    primaries = {slot["primary"] for slot in slots.values()}
    replicas = {replica for slot in slots.values() for replica in slot["replicas"]}
    assert len(primaries) == 3
    assert len(replicas) == 3
    assert all(len(slot["replicas"]) == 1 for slot in slots.values())
    assert primaries | replicas == set(addresses)


def keys_on_every_primary(cluster: RedisClusterServers) -> dict[str, object]:
    """One key per primary, found through the harness's own view of the slot map."""
    wanted = {node.address for node in cluster.primaries()}
    found = {}
    for number in range(1000):  # three primaries: a few keys are enough
        key = f"key-{number}"
        owner = cluster.primary_for(key)
        if owner.address in wanted:
            found[key] = owner
            wanted.remove(owner.address)
        if not wanted:
            return found
    raise AssertionError(f"no key of 1000 lives on {wanted}")


def test_keys_in_different_slots_live_on_different_primaries(
    redis_cluster_url: str, redis_cluster: RedisClusterServers
):
    keys = keys_on_every_primary(redis_cluster)
    client = cluster_client(redis_cluster_url)
    for key in keys:
        client.set(key, key)
    for key, owner in keys.items():
        assert owner.client().get(key) == key.encode()
        for other in redis_cluster.primaries():
            if other is not owner:
                with pytest.raises(redis.exceptions.MovedError) as moved:
                    other.client().get(key)
                assert moved.value.node_addr == ("127.0.0.1", owner.port)
    some_primary = next(iter(keys.values()))
    with pytest.raises(redis.exceptions.ClusterCrossSlotError):
        some_primary.client().execute_command("MSET", *itertools.chain(*((key, 1) for key in keys)))
    # A hash tag puts keys in one slot, whatever else their names say.
    assert redis_cluster.primary_for("{u:42}:a") is redis_cluster.primary_for("{u:42}:zzz")


def test_cluster_flush_empties_every_primary_and_replica(redis_cluster_url: str, redis_cluster: RedisClusterServers):
    client = cluster_client(redis_cluster_url)
    for key in keys_on_every_primary(redis_cluster):
        client.set(key, 1)
    redis_cluster.flush()
    for node in redis_cluster.nodes:
        assert node.client().dbsize() == 0, node.address


def test_killing_a_cluster_primary_promotes_its_replica(disposable_redis_cluster: RedisClusterServers):
    cluster = disposable_redis_cluster
    client = cluster_client(cluster.url)
    client.set("survivor", "written before the crash")
    primary = cluster.primary_for("survivor")
    assert primary.client().wait(1, 2000) == 1

    replica = cluster.kill_primary(primary)
    seconds = cluster.wait_for_failover()
    print(f"\nRedis Cluster failover (node timeout 1000 ms): {seconds:.2f} s from SIGKILL to cluster_state:ok")

    assert not primary.running
    assert cluster.primary_for("survivor") is replica
    assert replica.client().info("replication")["role"] == "master"
    for node in cluster.nodes:
        if node.running:
            assert node.client().cluster("INFO")["cluster_state"] == "ok"
    # The client made before the crash finds the new primary by itself.
    assert client.get("survivor") == b"written before the crash"
    client.set("after", "the failover")
    assert replica.client().get("after") == b"the failover"

    # The old primary, started again, rejoins as a replica of the node that took its slots.
    cluster.restart(primary)
    assert primary.client().info("replication")["master_port"] == replica.port


def test_sentinel_setup_watches_primary_and_replica(redis_sentinel_url: str, redis_sentinel: RedisSentinelServers):
    sentinel, master_name = sentinel_client(redis_sentinel_url)
    assert master_name == redis_sentinel.master_name
    primary = redis_sentinel.primary()
    for host, port in split_topology_url(redis_sentinel_url)[2]:
        watcher = redis.Redis(host=host, port=port, decode_responses=True)
        assert watcher.sentinel_get_master_addr_by_name(master_name) == ("127.0.0.1", primary.port)
        assert watcher.sentinel_master(master_name)["num-other-sentinels"] == 2
        # Split so redis-py does not read the reply as a bare OK: it says how many sentinels are usable.
        assert watcher.execute_command("SENTINEL", "CKQUORUM", master_name).startswith("OK 3 usable Sentinels")
    (replica,) = redis_sentinel.replicas()
    assert sentinel.discover_slaves(master_name) == [("127.0.0.1", replica.port)]
    with pytest.raises(redis.exceptions.AuthenticationError):
        primary.client(password=None, retry=None).ping()

    master = sentinel.master_for(master_name)
    master.set("written", "to the primary")
    assert master.wait(1, 2000) == 1
    assert sentinel.slave_for(master_name).get("written") == b"to the primary"
    redis_sentinel.flush()
    assert primary.client().dbsize() == replica.client().dbsize() == 0


def test_killing_the_sentinel_primary_promotes_the_replica(disposable_redis_sentinel: RedisSentinelServers):
    topology = disposable_redis_sentinel
    sentinel, master_name = sentinel_client(topology.url)
    master = sentinel.master_for(master_name)
    master.set("survivor", "written before the crash")
    assert master.wait(1, 2000) == 1
    (replica,) = topology.replicas()

    old_primary = topology.kill_primary()
    seconds = topology.wait_for_failover()
    print(f"\nRedis Sentinel failover (down-after 1000 ms): {seconds:.2f} s from SIGKILL to a write on the new primary")

    assert not old_primary.running
    assert sentinel.discover_master(master_name) == ("127.0.0.1", replica.port)
    new_master = Sentinel(split_topology_url(topology.url)[2], password=TOPOLOGY_PASSWORD).master_for(master_name)
    assert new_master.get("survivor") == b"written before the crash"
    new_master.set("after", "the failover")
    assert replica.client().get("after") == b"the failover"
