"""Secrets stay out of logs, answers and `ps`; settings that would expose the service stop start-up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from harness import RedisProcess, ServerProcess, free_port
from imlimits.v1 import limit_pb2, limit_pb2_grpc

PASSWORD = "redis-secret-password-7f3a"


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """imlimits-server to completion; on a timeout the whole process group (workers too) is killed."""
    process = subprocess.Popen([sys.executable, "-m", "imlimits_server.main", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"still running after {timeout} s:\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture
def redis_with_password(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--requirepass",
                                PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    yield port
    if process.poll() is None:
        process.terminate()
        process.wait()


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_the_redis_password_is_in_no_log_line_argv_or_answer(redis_with_password: int) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_with_password}/0"
    process = ServerProcess("--workers", "2", env={"IMLIMITS_REDIS_URL": url}).start()
    try:
        workers = _children(process.pid)
        assert len(workers) == 2
        for worker in workers:
            command_line = Path(f"/proc/{worker}/cmdline").read_bytes().decode()
            assert PASSWORD not in command_line and "--redis-url" not in command_line
        subprocess.run(["redis-cli", "-p", str(redis_with_password), "-a", PASSWORD, "--no-auth-warning",
                        "shutdown", "nosave"], capture_output=True, timeout=10)
        with grpc.insecure_channel(process.target) as channel, pytest.raises(grpc.RpcError) as unavailable:
            limit_pb2_grpc.LimitServiceStub(channel).CreateRoom(
                limit_pb2.CreateRoomRequest(app_id=1_400_000_001, room_id="r"), timeout=10)
        assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
        answer = unavailable.value.details()
        assert "127.0.0.1" not in answer and str(redis_with_password) not in answer
    finally:
        process.stop()
    output = "".join(process.output)
    assert "serving on" in output and f"redis://***@127.0.0.1:{redis_with_password}/0" in output
    assert "WARNING imlimits.errors: redis unavailable in CreateRoom: " in output  # the details: in the log
    assert PASSWORD not in output


def test_workers_stop_when_they_cannot_listen(own_redis: RedisProcess) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        done = _run("--workers", "2", "--listen", listen, "--redis-url", own_redis.url)
    assert done.returncode == 1
    assert f"cannot listen on {listen}" in done.stderr and "refused to run" in done.stderr


def test_workers_refuse_an_exposed_listen_at_once(own_redis: RedisProcess) -> None:
    done = _run("--workers", "2", "--listen", "0.0.0.0:0", "--redis-url", own_redis.url)
    assert done.returncode == 1 and "refusing to listen on 0.0.0.0:0" in done.stderr


def _listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp shows them) of sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(address)
    return found


@pytest.mark.parametrize("form", ["{port}", ":{port}"])
def test_a_metrics_port_alone_listens_on_loopback(own_redis: RedisProcess, form: str) -> None:
    port = free_port()
    process = ServerProcess("--redis-url", own_redis.url, "--metrics-listen", form.format(port=port)).start()
    try:
        assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1
        assert b"imlimits_in_flight_calls" in urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                                                     timeout=10).read()
    finally:
        process.stop()


def test_metrics_beyond_loopback_need_consent(own_redis: RedisProcess) -> None:
    done = _run("--redis-url", own_redis.url, "--listen", "127.0.0.1:0", "--metrics-listen", f"0.0.0.0:{free_port()}")
    assert done.returncode == 1 and "refusing to serve metrics on 0.0.0.0:" in done.stderr


@pytest.mark.parametrize("given", ["file", "variable"])
def test_tokens_asked_for_but_absent_stop_start_up(own_redis: RedisProcess, tmp_path: Path, given: str) -> None:
    empty = tmp_path / "admin.tokens"
    empty.write_text("# to be filled in\n\n")
    args, env = (["--admin-tokens-file", str(empty)], {}) if given == "file" else ([], {"IMLIMITS_ADMIN_TOKENS": ","})
    done = _run("--redis-url", own_redis.url, "--listen", "127.0.0.1:0", *args, env=env)
    assert done.returncode == 2 and "holds no token" in done.stderr
