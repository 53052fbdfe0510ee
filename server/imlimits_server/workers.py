"""Several server processes on one port (SO_REUSEPORT), started and supervised by one parent.

A Python process serves on one core; workers let one host use all of them.
The parent owns the embedded redis-server, restarts a worker that dies, and
passes SIGTERM on so every worker drains its calls. Workers get their flags
through the environment, not argv: `ps` shows every user a command line,
and it would show the Redis URL with its password.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

log = logging.getLogger("imlimits.workers")

# A worker that keeps dying is restarted at most this often.
_RESTART_INTERVAL_SECONDS = 1.0
# A worker's flags, as a JSON list: read (and removed) by the worker's main().
ARGS_VARIABLE = "IMLIMITS_WORKER_ARGS"
# Exit statuses of a worker that refused its settings (main's 1 and 2): restarting cannot help.
_REFUSED = (1, 2)


def worker_args() -> list[str] | None:
    """In a worker, the flags its parent gave it; None in a process the user started."""
    value = os.environ.pop(ARGS_VARIABLE, None)
    return None if value is None else [str(arg) for arg in json.loads(value)]


def _shared_listen(listen: str) -> str:
    """Port 0 means "any free port", but every worker must bind the same one: choose it here."""
    host, _, port = listen.rpartition(":")
    if port != "0":
        return listen
    with socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET) as probe:
        probe.bind((host.strip("[]") or "0.0.0.0", 0))
        return f"{host}:{probe.getsockname()[1]}"


def supervise(argv: Sequence[str], workers: int, listen: str, redis_url: str, grace: float,
              metrics_listen: str | None = None) -> int:
    """Run `workers` copies of this server with the same flags; later flags override earlier ones."""
    listen = _shared_listen(listen)
    base = [*argv, "--listen", listen, "--redis-url", redis_url, "--workers", "1"]

    def start(index: int) -> subprocess.Popen[bytes]:
        args = base
        if metrics_listen:
            # One metrics port per worker: Prometheus scrapes each process.
            host, _, port = metrics_listen.rpartition(":")
            args = [*base, "--metrics-listen", f"{host}:{int(port) + index}"]
        return subprocess.Popen([sys.executable, "-m", "imlimits_server.main"],
                                env={**os.environ, ARGS_VARIABLE: json.dumps(args)})

    children = [start(index) for index in range(workers)]
    log.info("started %d workers on %s", workers, listen)
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    last_restart = 0.0
    refused: int | None = None
    while not stopping:
        time.sleep(0.2)
        for index, child in enumerate(children):
            if stopping or child.poll() is None or time.monotonic() - last_restart < _RESTART_INTERVAL_SECONDS:
                continue
            if child.returncode in _REFUSED:
                log.error("worker %d refused to run (exit %d, its error is above): stopping every worker",
                          child.pid, child.returncode)
                refused, stopping = child.returncode, True
                break
            log.warning("worker %d exited with %s: restarting it", child.pid, child.returncode)
            children[index] = start(index)
            last_restart = time.monotonic()
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace + 5
    codes = []
    for child in children:
        try:
            codes.append(child.wait(timeout=max(0.1, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            child.kill()
            codes.append(child.wait())
    if refused is not None:
        return refused
    # A worker still starting when SIGTERM came dies by the signal: it had no calls to finish.
    return 0 if all(code in (0, -signal.SIGTERM) for code in codes) else 1
