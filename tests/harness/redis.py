"""Real ``redis-server`` processes on free localhost ports: standalone and a 3-master Cluster.

Nothing is persisted (``--save "" --appendonly no``) and everything lives in a directory the
caller owns (pytest's tmp_path), so a test can never touch the machine's own Redis on 6379.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import redis

from meshguard.common.netutil import LOCALHOST, free_port
from meshguard.common.processes import terminate


class RedisHarnessError(RuntimeError):
    """redis-server is missing or did not come up; the message has its log tail."""


def redis_binary(name: str = "redis-server") -> str:
    found = shutil.which(name)
    if found is None:
        raise RedisHarnessError(f"{name} not found on PATH (apt-get install -y redis-server)")
    return found


class RedisServer:
    """One redis-server bound to 127.0.0.1; ``stop``/``kill`` and ``start`` again on one port."""

    def __init__(
        self, directory: Path, port: int | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.directory = directory
        self.port = port if port is not None else free_port()
        self.extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return LOCALHOST

    @property
    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RedisHarnessError("redis-server is not running")
        return self._process.pid

    def client(self) -> redis.Redis:
        return redis.Redis(host=LOCALHOST, port=self.port, socket_timeout=2)

    def start(self, timeout: float = 10.0) -> Self:
        """Start and block until it answers PING."""
        if self.running:
            raise RedisHarnessError(f"redis-server on port {self.port} is already running")
        self.directory.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", LOCALHOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.directory),
            *self.extra_args,
        ]  # fmt: skip
        # Logging to stdout catches config errors too, which redis prints before opening a logfile.
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not self.ping():
            code = self._process.poll()
            if code is not None or time.monotonic() > deadline:
                self.kill()
                state = f"exited with code {code}" if code is not None else "did not answer PING"
                raise RedisHarnessError(
                    f"redis-server on port {self.port} {state}:\n{self.log_tail()}"
                )
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        """One PING on a raw socket: redis-py's client would retry with back-off when down."""
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """Graceful stop (SIGTERM, then SIGKILL). Idempotent."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Crash it (SIGKILL), as an outage test wants."""
        self._end(signal.SIGKILL, 5.0)

    def _end(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        terminate(process, timeout, sig)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "<no log>"


class RedisCluster:
    """A Redis Cluster of ``masters`` nodes (no replicas), slots spread by ``redis-cli``."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        if masters < 3:
            raise RedisHarnessError("redis-cli --cluster create needs at least 3 masters")
        self.directory = directory
        self.nodes: list[RedisServer] = []
        for index in range(masters):
            node_dir = directory / f"node{index}"
            # An explicit bus port: the default (port + 10000) may be taken or out of range.
            args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-port", str(free_port()),
                "--cluster-node-timeout", "2000",
            ]  # fmt: skip
            self.nodes.append(RedisServer(node_dir, extra_args=args))

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        return [(node.host, node.port) for node in self.nodes]

    def start(self, timeout: float = 30.0) -> Self:
        """Start every node, create the cluster and wait until every node says state ok."""
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"{host}:{port}" for host, port in self.startup_nodes]
            options = ["--cluster-replicas", "0", "--cluster-yes"]
            create = subprocess.run(
                [redis_binary("redis-cli"), "--cluster", "create", *addresses, *options],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            if create.returncode != 0:
                raise RedisHarnessError(f"redis-cli --cluster create failed:\n{create.stdout}")
            self._wait_ok(time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ok(self, deadline: float) -> None:
        while True:
            states = []
            for node in self.nodes:
                with node.client() as client:
                    states.append(client.execute_command("CLUSTER INFO"))
            if all(_cluster_ok(state) for state in states):
                return
            if time.monotonic() > deadline:
                raise RedisHarnessError(f"cluster not ok: {states}")
            time.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _cluster_ok(info: object) -> bool:
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text


class RedisFactory:
    """Starts servers and clusters in numbered directories below ``root``; ``close`` stops all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: list[RedisServer] = []
        self.clusters: list[RedisCluster] = []

    def __call__(self, port: int | None = None, extra_args: Sequence[str] = ()) -> RedisServer:
        directory = self.root / f"server{len(self.servers)}"
        server = RedisServer(directory, port, extra_args)
        self.servers.append(server)
        return server.start()

    def cluster(self, masters: int = 3) -> RedisCluster:
        cluster = RedisCluster(self.root / f"cluster{len(self.clusters)}", masters)
        self.clusters.append(cluster)
        return cluster.start()

    def close(self) -> None:
        for server in self.servers:
            server.stop()
        for cluster in self.clusters:
            cluster.stop()
