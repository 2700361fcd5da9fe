"""REDIS_URL in its three forms, read into what redis-py's clients need; bad ones refused clearly."""

from __future__ import annotations

import pytest
import redis

from shared.redis_client import ReplicatedWrites, create_redis_client, is_cluster, parse_redis_url
from tests.support.backends import free_port


def test_a_standalone_url_is_redis_pys_own():
    target = parse_redis_url("rediss://:secret@cache.internal:6380/2")
    assert (target.topology, target.db, target.nodes) == ("standalone", 2, ())


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_database():
    target = parse_redis_url("redis+sentinel://app:p%40ss@10.0.0.1:26379,[::1]:26380/mymaster/3?sentinel_password=s")
    assert target.topology == "sentinel"
    assert target.nodes == (("10.0.0.1", 26379), ("::1", 26380))
    assert (target.username, target.password, target.master_name, target.db) == ("app", "p@ss", "mymaster", 3)
    assert target.sentinel_password == "s"
    assert parse_redis_url("redis+sentinel://h:1/m").db == 0


def test_a_cluster_url_lists_seed_nodes():
    target = parse_redis_url("redis+cluster://:pw@h1:7000,h2:7001")
    assert (target.topology, target.nodes, target.password) == ("cluster", (("h1", 7000), ("h2", 7001)), "pw")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "http://h:1",
        "redis+sentinel://h:1",
        "redis+sentinel://h:1/m/0/extra",
        "redis+sentinel://h:notaport/m",
        "redis+sentinel://h:70000/m",
        "redis+sentinel://:1/m",
        "redis+cluster://h:1,,h:2",
        "redis+cluster://h:1/m",
        "redis+cluster://h:1?unknown=1",
    ],
)
def test_a_bad_url_is_refused_without_echoing_a_password(url):
    with pytest.raises(ValueError, match=r"(?i)redis|host:port|option") as refused:
        parse_redis_url(url.replace("//", "//:hunter2@", 1) if "//" in url else url)
    assert "hunter2" not in str(refused.value)


def test_a_password_never_shows_in_the_parsed_form():
    assert "hunter2" not in repr(parse_redis_url("redis+cluster://:hunter2@h:1"))


def test_a_cluster_that_cannot_be_reached_is_a_connection_error_at_first_use_not_at_start():
    client = create_redis_client(f"redis+cluster://127.0.0.1:{free_port()}")  # nobody listens
    assert is_cluster(client)
    with pytest.raises(redis.exceptions.ConnectionError):
        client.get("k")


def test_writes_on_a_standalone_server_wait_for_nobody_by_default(redis_url):
    writes = ReplicatedWrites(create_redis_client(redis_url), min_replicas=None)
    assert writes.min_replicas == 0
    assert writes.write("k", lambda client: client.set("k", "v")) is True
