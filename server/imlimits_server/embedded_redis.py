"""The embedded default: a private redis-server that imlimits starts, owns and stops."""

from __future__ import annotations

import fcntl
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

import redis

log = logging.getLogger("imlimits.embedded_redis")

# A Unix socket path must fit in sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100
_START_TIMEOUT_SECONDS = 15.0


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    """redis-server on a Unix socket, with append-only persistence in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="imlimits-")) / "redis.sock"
        self.socket = socket
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        """Take the data directory's lock and start redis-server; the lock is kept until stop()."""
        if shutil.which("redis-server") is None:
            raise EmbeddedRedisError(
                "redis-server not found on PATH: install it (Debian: apt-get install redis-server) "
                "or point imlimits at a running Redis with --redis-url")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = (self.data_dir / "imlimits.lock").open("w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedRedisError(
                f"{self.data_dir} is in use by another imlimits-server; give each its own --data-dir "
                "or share one Redis with --redis-url") from None
        self.launch()
        return self.url

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def launch(self) -> None:
        """Start redis-server on the data directory (again, after a crash) and wait until it answers."""
        executable = shutil.which("redis-server")
        if executable is None:
            raise EmbeddedRedisError("redis-server is no longer on PATH")
        self.socket.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [
                executable, "--port", "0", "--unixsocket", str(self.socket), "--unixsocketperm", "700",
                # fsync before replying: Redis writes the AOF once per event-loop turn, so pipelined
                # checks share one fsync, and an acknowledged change survives a crash.
                "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
                "--save", "", "--logfile", str(self.data_dir / "redis.log"), "--daemonize", "no",
            ],
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()
        log.info("embedded redis-server (pid %d) ready on %s, data in %s", self._process.pid, self.socket,
                 self.data_dir)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1)
        try:
            while time.monotonic() < deadline:
                assert self._process is not None
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"redis-server exited with {self._process.returncode}; see {self.data_dir / 'redis.log'}")
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError):
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer within {_START_TIMEOUT_SECONDS:.0f} s")

    def stop(self) -> None:
        """Stop redis-server cleanly: SIGTERM makes it flush the append-only file and exit."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None
