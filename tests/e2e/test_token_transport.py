"""The command line and the client send a bearer token in plaintext only to this host, or when told to.

0.0.0.0 is not a loopback address, yet connecting to it reaches this host's
loopback listeners: the tests use it as a "remote" target that stays on
this machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from e2e.test_security import ADMIN, _certificates
from harness import RedisProcess, ServerProcess
from imlimits_client import AsyncClient, Client, PlaintextTokenRefused
from imlimits_client.transport import is_local


@pytest.mark.parametrize(("target", "local"), [
    ("localhost:50051", True), ("127.0.0.1:50051", True), ("127.9.9.9:1", True), ("[::1]:50051", True),
    ("ipv4:127.0.0.1:50051", True), ("dns:///localhost:50051", True), ("unix:/run/imlimits.sock", True),
    ("0.0.0.0:50051", False), ("10.0.0.5:50051", False), ("imlimits.internal:50051", False),
    ("dns:///imlimits.internal:50051", False), ("[2001:db8::1]:50051", False), ("localhost.evil.example:1", False),
])
def test_which_targets_stay_on_this_host(target: str, local: bool) -> None:
    assert is_local(target) == local


def test_the_client_refuses_a_plaintext_token_beyond_this_host() -> None:
    with pytest.raises(PlaintextTokenRefused, match=r"plaintext to 10\.0\.0\.5:50051"):
        Client("10.0.0.5:50051", token=ADMIN)
    for allowed in ({"insecure": True}, {"credentials": grpc.ssl_channel_credentials()}, {"token": None}):
        Client("10.0.0.5:50051", **{"token": ADMIN, **allowed}).close()
    Client("127.0.0.1:50051", token=ADMIN).close()

    async def asynchronous() -> None:
        with pytest.raises(PlaintextTokenRefused):
            AsyncClient("10.0.0.5:50051", token=ADMIN)
        await AsyncClient("10.0.0.5:50051", token=ADMIN, insecure=True).close()

    asyncio.run(asynchronous())


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imlimits_client.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP port that records whether anyone connected."""
    with socket.socket() as sniffer:
        sniffer.bind(("127.0.0.1", 0))
        sniffer.listen()
        sniffer.settimeout(0.5)
        yield sniffer


def test_the_cli_sends_no_plaintext_token_beyond_this_host(listener: socket.socket, app_id: int) -> None:
    port = listener.getsockname()[1]
    done = _cli("app", "show", str(app_id), "--target", f"0.0.0.0:{port}", env={"IMLIMITS_TOKEN": ADMIN})
    assert done.returncode == 2
    assert "refusing to send the token in plaintext to 0.0.0.0:" in done.stderr and "--insecure" in done.stderr
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing connected, so nothing was sent


def test_the_cli_sends_it_when_told_to(server: ServerProcess, app_id: int) -> None:
    done = _cli("app", "create", str(app_id), "--target", f"0.0.0.0:{server.port}", "--insecure",
                env={"IMLIMITS_TOKEN": ADMIN})
    assert done.returncode == 0, done.stderr


def test_the_cli_trusts_the_system_cas_with_tls(own_redis: RedisProcess, tmp_path: Path, app_id: int) -> None:
    certs = _certificates(tmp_path)
    process = ServerProcess("--redis-url", own_redis.url, "--tls-cert", str(certs["server.pem"]), "--tls-key",
                            str(certs["server.key"]), env={"IMLIMITS_ADMIN_TOKENS": ADMIN}).start(wait_serving=False)
    try:
        command = ("app", "create", str(app_id), "--target", f"127.0.0.1:{process.port}", "--tls")
        # A private CA is not among the system's: the handshake fails, the call answers UNAVAILABLE.
        untrusted = _cli(*command, "--timeout", "1", env={"IMLIMITS_TOKEN": ADMIN})
        assert untrusted.returncode == 1 and "cannot reach imlimits" in untrusted.stderr
        # SSL_CERT_FILE is OpenSSL's way to say which CAs the system trusts.
        trusted = _cli(*command, env={"IMLIMITS_TOKEN": ADMIN, "SSL_CERT_FILE": str(certs["ca.pem"])})
        assert trusted.returncode == 0 and trusted.stdout.startswith(f"app {app_id}: Trial"), trusted.stderr
    finally:
        process.stop()
