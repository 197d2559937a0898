from __future__ import annotations

import os

import pytest
import redis
import redis.asyncio
from redis.cluster import ClusterNode, RedisCluster

from meshguard.common.netutil import port_open
from tests.harness.redis import RedisCluster as ClusterHarness
from tests.harness.redis import RedisFactory, RedisServer


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_redis_server_fixture_answers_on_its_own_port(redis_server: RedisServer) -> None:
    assert redis_server.port != 6379
    client = redis.asyncio.from_url(redis_server.url)
    try:
        assert await client.ping()
        await client.set("k", "v")
        assert await client.get("k") == b"v"
        config = await client.config_get("save")
        assert config["save"] == ""
        assert (await client.config_get("appendonly"))["appendonly"] == "no"
    finally:
        await client.aclose()


def test_stop_ends_the_process_and_frees_the_port(redis_factory: RedisFactory) -> None:
    server = redis_factory()
    pid = server.pid
    server.stop()
    assert not server.running
    assert gone(pid)
    assert not port_open(server.port)
    server.stop()  # idempotent


def test_kill_and_restart_on_the_same_port(redis_factory: RedisFactory) -> None:
    server = redis_factory()
    port = server.port
    with server.client() as client:
        client.set("k", "v")
    server.kill()
    assert not server.ping()
    server.start()
    assert server.port == port
    with server.client() as client:
        assert client.get("k") is None, "nothing is persisted across restarts"


def test_factory_close_stops_servers(tmp_path_factory: pytest.TempPathFactory) -> None:
    factory = RedisFactory(tmp_path_factory.mktemp("redis"))
    servers = [factory(), factory()]
    pids = [s.pid for s in servers]
    factory.close()
    assert all(gone(pid) for pid in pids)


def test_start_failure_reports_the_log(redis_factory: RedisFactory) -> None:
    with pytest.raises(RuntimeError, match="exited with code") as err:
        redis_factory(extra_args=["--no-such-option", "1"])
    assert "no-such-option" in str(err.value)


def test_redis_cluster_spreads_keys_over_three_masters(redis_cluster: ClusterHarness) -> None:
    nodes = [ClusterNode(host, port) for host, port in redis_cluster.startup_nodes]
    client = RedisCluster(startup_nodes=nodes)
    try:
        keys = [f"key{i}" for i in range(30)]
        for key in keys:
            client.set(key, key)
        assert [client.get(key) for key in keys] == [k.encode() for k in keys]
        owners = {client.get_node_from_key(key).port for key in keys}
        assert len(owners) == 3
        assert len(client.get_primaries()) == 3
    finally:
        client.close()
    pids = [node.pid for node in redis_cluster.nodes]
    redis_cluster.stop()
    assert all(gone(pid) for pid in pids)
