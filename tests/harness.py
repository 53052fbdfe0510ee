"""Real parts for tests: a redis-server on a free loopback port and imlimits-server processes.

Each process is started, waited on until ready, and stopped; nothing is mocked.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

READY_TIMEOUT_SECONDS = 20.0


# Temporary directories made for test processes; each is removed by temp_dirs_removed() or at exit at the latest.
_temp_dirs: list[Path] = []


def temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _temp_dirs.append(path)
    return path


@contextmanager
def temp_dirs_removed() -> Iterator[None]:
    """Removes the temporary directories made inside the block, also when it raises."""
    before = set(_temp_dirs)
    try:
        yield
    finally:
        for path in [path for path in _temp_dirs if path not in before]:
            _temp_dirs.remove(path)
            shutil.rmtree(path, ignore_errors=True)


def remove_temp_dirs() -> None:
    while _temp_dirs:
        shutil.rmtree(_temp_dirs.pop(), ignore_errors=True)


atexit.register(remove_temp_dirs)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisProcess:
    """redis-server on 127.0.0.1, without persistence unless asked."""

    def __init__(self, data_dir: Path | None = None, port: int | None = None, durable: bool = False) -> None:
        self.data_dir = data_dir or temp_dir("imlimits-test-redis-")
        self.port = port or free_port()
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self.process = subprocess.Popen(
            [executable, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
             "--save", "", "--appendonly", "yes" if self.durable else "no", "--appendfsync", "always",
             "--daemonize", "no", "--logfile", str(self.data_dir / "redis.log")],
            stdin=subprocess.DEVNULL,
        )
        try:
            _wait_ping(self.port)
        except RuntimeError:
            self.stop()  # never leave a half-started server behind
            raise
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None


class WatchedProcess:
    """A child process whose output is kept for assertions; it is ready once a line of its output says so."""

    # What the process is called in failure messages.
    name = "process"
    # How long it may take to print its ready line.
    ready_timeout = READY_TIMEOUT_SECONDS

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def read_ready(self, line: str) -> bool:
        """Whether this line of output says the process is ready (and note what it says)."""
        raise NotImplementedError

    def launch(self) -> None:
        """Start the process and wait for its ready line; stopped again, with its output, if none comes."""
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            env=self.env, cwd=self.cwd)
        ready = [False]

        def read_output() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line)
                if not ready[0] and self.read_ready(line):
                    ready[0] = True
                    self._ready.set()
            self._ready.set()

        self._reader = threading.Thread(target=read_output, daemon=True)
        self._reader.start()
        if not self._ready.wait(self.ready_timeout) or not ready[0]:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n" + "".join(self.output))

    def wait_exit(self, timeout: float = READY_TIMEOUT_SECONDS) -> int:
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        self._join_reader()
        return code

    def _join_reader(self) -> None:
        """Wait until every line the process wrote is in `output` (the pipe closes when it exits)."""
        if self._reader is not None:
            self._reader.join(timeout=READY_TIMEOUT_SECONDS)
            assert not self._reader.is_alive(), f"the {self.name}'s output pipe stayed open after it exited"

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code = self.process.returncode
        self.process = None
        self._join_reader()
        return code


class ServerProcess(WatchedProcess):
    """One imlimits-server process; its port is read from its own start-up line."""

    name = "imlimits-server"

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                 module: str = "imlimits_server.main") -> None:
        super().__init__(*args, env=env, cwd=cwd)
        self.module = module
        self.port: int | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, "--listen", "127.0.0.1:0", *self.args]

    def read_ready(self, line: str) -> bool:
        match = re.search(r"serving on [^ ]+:(\d+) ", line)
        if match:
            self.port = int(match.group(1))
        return match is not None

    def start(self, wait_serving: bool = True) -> ServerProcess:
        self.launch()
        if wait_serving:
            self.wait_health(health_pb2.HealthCheckResponse.SERVING)
        return self

    def wait_health(self, status: int, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                try:
                    if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == status:
                        return
                except grpc.RpcError:
                    pass
                time.sleep(0.05)
        raise RuntimeError(f"health never became {status}:\n" + "".join(self.output))


class ClusterProcess:
    """A Redis Cluster of `masters` redis-servers on loopback, made with `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3) -> None:
        self.data_dir = temp_dir("imlimits-test-cluster-")
        self.ports = [_cluster_port() for _ in range(masters)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> ClusterProcess:
        try:
            return self._start()
        except (RuntimeError, subprocess.SubprocessError):
            self.stop()  # never leave half a cluster behind
            raise

    def _start(self) -> ClusterProcess:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        for port in self.ports:
            node_dir = self.data_dir / str(port)
            node_dir.mkdir()
            self.processes.append(subprocess.Popen(
                [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
                 "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                 "--save", "", "--appendonly", "no", "--logfile", str(node_dir / "redis.log")],
                stdin=subprocess.DEVNULL))
        for port in self.ports:
            _wait_ping(port)
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports),
                        "--cluster-replicas", "0", "--cluster-yes"], check=True, capture_output=True, timeout=60)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in self.node(port).execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
                   for port in self.ports):
                return self
            time.sleep(0.1)
        raise RuntimeError("the cluster did not become ready")

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True)

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot` now."""
        for start, end, master, *_ in self.node(self.ports[0]).execute_command("CLUSTER", "SLOTS"):  # type: ignore
            if start <= slot <= end:
                return int(master[1])
        raise RuntimeError(f"slot {slot} is not served")

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        self.processes = []


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


def _wait_ping(port: int) -> None:
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return
        except (redis.ConnectionError, redis.TimeoutError):
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not start")


# A script that keeps Redis busy for ARGV[1] microseconds, as a slow script of another client would.
_STALL_SCRIPT = """
local started = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - started[1]) * 1000000 + (now[2] - started[2]) >= tonumber(ARGV[1]) then return 1 end
end
"""


def stall_redis(client: redis.Redis, seconds: float) -> threading.Thread:
    """Keep the Redis behind `client` busy for `seconds`, from a thread; join the thread to wait for the end."""
    thread = threading.Thread(target=lambda: client.eval(_STALL_SCRIPT, 0, int(seconds * 1_000_000)))
    thread.start()
    return thread
