"""The embedded default: a private redis-server that imlimits starts, owns and stops."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

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
        # Absolute but not resolved: a data directory that is a symbolic link must be seen as one.
        self.data_dir = Path(os.path.abspath(data_dir))
        socket = self.data_dir / "redis.sock"
        if len(str(socket)) > _MAX_SOCKET_PATH:
            socket = Path(tempfile.mkdtemp(prefix="imlimits-")) / "redis.sock"
        self.socket = socket
        self._process: subprocess.Popen[bytes] | None = None
        self._lock: int | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        """Take the data directory's lock and start redis-server; the lock is kept until stop()."""
        if shutil.which("redis-server") is None:
            raise EmbeddedRedisError(
                "redis-server not found on PATH: install it (Debian: apt-get install redis-server) "
                "or point imlimits at a running Redis with --redis-url")
        self._claim_data_dir()
        self._lock = self._open_lock()
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmbeddedRedisError(
                f"{self.data_dir} is in use by another imlimits-server; give each its own --data-dir "
                "or share one Redis with --redis-url") from None
        self.launch()
        return self.url

    def _claim_data_dir(self) -> None:
        """The data directory holds every plan's history: only this user may enter it (0700).

        One that another user owns, or a symbolic link (which someone may have
        planted to point elsewhere), is refused rather than used.
        """
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            self.data_dir.mkdir(mode=0o700)
        info = self.data_dir.lstat()
        if stat.S_ISLNK(info.st_mode):
            raise EmbeddedRedisError(f"--data-dir {self.data_dir} is a symbolic link: refusing it; give the "
                                     "directory it points to, if you trust it")
        if not stat.S_ISDIR(info.st_mode):
            raise EmbeddedRedisError(f"--data-dir {self.data_dir} is not a directory")
        if info.st_uid != os.geteuid():
            raise EmbeddedRedisError(f"--data-dir {self.data_dir} belongs to user id {info.st_uid}, not to this "
                                     f"user ({os.geteuid()}): refusing it, as its owner could read or change "
                                     "every plan; give a directory of your own")
        if stat.S_IMODE(info.st_mode) & 0o077:
            log.warning("--data-dir %s was open to others (mode %o): restricting it to this user (0700)",
                        self.data_dir, stat.S_IMODE(info.st_mode))
            self.data_dir.chmod(0o700)

    def _open_lock(self) -> int:
        """The lock file, opened without following a symbolic link and without truncating anything."""
        path = self.data_dir / "imlimits.lock"
        try:
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise EmbeddedRedisError(f"{path} is a symbolic link: refusing to open it; remove it") from None
            raise EmbeddedRedisError(f"{path}: {error.strerror}") from None
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(descriptor)
            raise EmbeddedRedisError(f"{path} is not a regular file of this user: refusing it; remove it")
        return descriptor

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
            umask=0o077,  # the AOF, its manifest and the log: 0600, readable by this user only
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
            os.close(self._lock)
            self._lock = None
