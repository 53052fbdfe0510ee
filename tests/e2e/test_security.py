"""Bearer tokens per service, rotation, TLS and mutual TLS, and the refusal to listen insecurely."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from harness import RedisProcess, ServerProcess, free_port
from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc

ADMIN, ROTATED_IN, CHECK = "admin-token-000000000001", "admin-token-000000000002", "check-token-000000000001"
OK, UNAUTHENTICATED, DENIED = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED


def _status(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()
    return OK


def _calls(channel: grpc.Channel, app_id: int, metadata: tuple[tuple[str, str], ...]) -> dict[str, grpc.StatusCode]:
    plans = plan_pb2_grpc.PlanServiceStub(channel)
    checks = limit_pb2_grpc.LimitServiceStub(channel)
    return {
        "PlanService": _status(lambda: plans.GetApp(plan_pb2.GetAppRequest(app_id=app_id), metadata=metadata)),
        "LimitService": _status(lambda: checks.GetUsage(limit_pb2.GetUsageRequest(app_id=app_id),
                                                        metadata=metadata)),
        "Health": _status(lambda: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())),
        "VerifyUsage": _status(lambda: checks.VerifyUsage(limit_pb2.VerifyUsageRequest(app_id=app_id),
                                                          metadata=metadata)),
    }


@pytest.fixture
def secured(own_redis: RedisProcess, tmp_path: Path, app_id: int) -> Iterator[ServerProcess]:
    check_file = tmp_path / "check-tokens"
    check_file.write_text(f"# rotated monthly\nbackend:{CHECK}\n")
    process = ServerProcess("--redis-url", own_redis.url, "--check-tokens-file", str(check_file),
                            env={"IMLIMITS_ADMIN_TOKENS": f"ops:{ADMIN},ops-next:{ROTATED_IN}"}).start()
    with grpc.insecure_channel(process.target) as channel:
        plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id),
                                                         metadata=(("authorization", f"Bearer {ADMIN}"),))
    yield process
    process.stop()


@pytest.mark.parametrize(("header", "plan", "limit"), [
    (None, UNAUTHENTICATED, UNAUTHENTICATED),
    (f"Basic {ADMIN}", UNAUTHENTICATED, UNAUTHENTICATED),
    ("Bearer not-a-token-at-all-000", UNAUTHENTICATED, UNAUTHENTICATED),
    (f"Bearer {ADMIN}", OK, OK),
    (f"Bearer {ROTATED_IN}", OK, OK),
    (f"bearer {CHECK}", DENIED, OK),
])
def test_token_kind_by_service(secured: ServerProcess, app_id: int, header: str | None, plan: grpc.StatusCode,
                               limit: grpc.StatusCode) -> None:
    metadata = (("authorization", header),) if header else ()
    with grpc.insecure_channel(secured.target) as channel:
        assert _calls(channel, app_id, metadata) == {"PlanService": plan, "LimitService": limit, "Health": OK,
                                                     "VerifyUsage": plan}  # an operator's action: admin only


def test_a_rotated_out_token_stops_working(own_redis: RedisProcess, app_id: int) -> None:
    process = ServerProcess("--redis-url", own_redis.url, env={"IMLIMITS_ADMIN_TOKENS": ROTATED_IN}).start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            assert _calls(channel, app_id, (("authorization", f"Bearer {ADMIN}"),))["PlanService"] == UNAUTHENTICATED
    finally:
        process.stop()


def _server_command(redis_server: RedisProcess, listen: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "imlimits_server.main", "--listen", listen, "--redis-url", redis_server.url, *args]


def test_short_tokens_are_refused_at_start(own_redis: RedisProcess) -> None:
    done = subprocess.run(_server_command(own_redis, "127.0.0.1:0"), capture_output=True, text=True, timeout=30,
                          env={**os.environ, "IMLIMITS_ADMIN_TOKENS": "short"})
    assert done.returncode == 2 and "at least 16 characters" in done.stderr


@pytest.mark.parametrize("env", [{}, {"IMLIMITS_ADMIN_TOKENS": ADMIN}])  # tokens without TLS go in clear text
def test_no_insecure_listening_beyond_loopback(own_redis: RedisProcess, env: dict[str, str]) -> None:
    done = subprocess.run(_server_command(own_redis, "0.0.0.0:0"), capture_output=True, text=True, timeout=30,
                          env={**os.environ, **env})
    assert done.returncode == 1 and "refusing to listen on 0.0.0.0:0" in done.stderr


def test_insecure_listening_when_asked(own_redis: RedisProcess) -> None:
    process = ServerProcess("--redis-url", own_redis.url, "--listen", "0.0.0.0:0", "--insecure").start()
    try:
        assert "serving on 0.0.0.0:" in "".join(process.output)
        assert "no tokens configured" in "".join(process.output)
    finally:
        process.stop()


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=imlimits test CA")
    for name, extension in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "extendedKeyUsage=clientAuth")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")
        (directory / f"{name}.ext").write_text(extension + "\n")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext")
    return {name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def _health_over_tls(port: int, credentials: grpc.ChannelCredentials) -> grpc.StatusCode:
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        return _status(lambda: health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5))


def test_tls_and_mutual_tls(own_redis: RedisProcess, tmp_path: Path) -> None:
    certs = _certificates(tmp_path)
    trust = grpc.ssl_channel_credentials(root_certificates=certs["ca.pem"].read_bytes())
    with_client_cert = grpc.ssl_channel_credentials(
        root_certificates=certs["ca.pem"].read_bytes(), private_key=certs["client.key"].read_bytes(),
        certificate_chain=certs["client.pem"].read_bytes())
    tls = ServerProcess("--redis-url", own_redis.url, "--tls-cert", str(certs["server.pem"]), "--tls-key",
                        str(certs["server.key"])).start(wait_serving=False)
    try:
        assert tls.port is not None
        assert _health_over_tls(tls.port, trust) == OK
    finally:
        tls.stop()
    mutual = ServerProcess("--redis-url", own_redis.url, "--tls-cert", str(certs["server.pem"]), "--tls-key",
                           str(certs["server.key"]), "--tls-client-ca", str(certs["ca.pem"])).start(wait_serving=False)
    try:
        assert mutual.port is not None
        assert _health_over_tls(mutual.port, with_client_cert) == OK
        assert _health_over_tls(mutual.port, trust) == grpc.StatusCode.UNAVAILABLE  # no client certificate
    finally:
        mutual.stop()


def test_cli_with_token_and_tls(own_redis: RedisProcess, tmp_path: Path, app_id: int) -> None:
    certs = _certificates(tmp_path)
    process = ServerProcess("--redis-url", own_redis.url, "--tls-cert", str(certs["server.pem"]), "--tls-key",
                            str(certs["server.key"]), env={"IMLIMITS_ADMIN_TOKENS": ADMIN}).start(wait_serving=False)
    try:
        token_file = tmp_path / "token"
        token_file.write_text(ADMIN + "\n")
        base = [sys.executable, "-m", "imlimits_client.cli", "app", "create", str(app_id), "--target",
                f"127.0.0.1:{process.port}", "--tls-ca", str(certs["ca.pem"])]
        anonymous = subprocess.run(base, capture_output=True, text=True, timeout=60)
        assert anonymous.returncode == 1 and "IMLIMITS_TOKEN" in anonymous.stderr
        done = subprocess.run([*base, "--token-file", str(token_file)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.startswith(f"app {app_id}: Trial")
    finally:
        process.stop()


def test_audit_trail_names_the_token(own_redis: RedisProcess, app_id: int) -> None:
    process = ServerProcess("--redis-url", own_redis.url, env={"IMLIMITS_ADMIN_TOKENS": f"ops:{ADMIN}"}).start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            plans = plan_pb2_grpc.PlanServiceStub(channel)
            metadata = (("authorization", f"Bearer {ADMIN}"),)
            plans.CreateApp(plan_pb2.CreateAppRequest(app_id=app_id, request_id="c-1"), metadata=metadata)
            plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO, dry_run=True),
                          metadata=metadata)  # a dry run changes nothing: no audit line
            plans.Upgrade(plan_pb2.UpgradeRequest(app_id=app_id, edition=plan_pb2.EDITION_PRO), metadata=metadata)
            limit_pb2_grpc.LimitServiceStub(channel).CreateRoom(  # checks are not logged one by one
                limit_pb2.CreateRoomRequest(app_id=app_id, room_id="r"), metadata=metadata)
    finally:
        process.stop()
    lines = [json.loads(line.split("imlimits.audit: ", 1)[1]) for line in process.output if "imlimits.audit" in line]
    assert [(line["who"], line["operation"], line["app_id"]) for line in lines] == [
        ("ops", "CreateApp", app_id), ("ops", "Upgrade", app_id)]
    assert lines[0]["request_id"] == "c-1"
    assert {"item": "edition", "from": "EDITION_TRIAL", "to": "EDITION_PRO", "implicit": False} in lines[1]["changes"]
    assert not any("CreateRoom" in line for line in process.output)


def test_redis_over_tls_with_a_password_from_a_file(tmp_path: Path, app_id: int) -> None:
    certs = _certificates(tmp_path)
    port = free_port()
    redis_tls = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--tls-cert-file",
         str(certs["server.pem"]), "--tls-key-file", str(certs["server.key"]), "--tls-ca-cert-file",
         str(certs["ca.pem"]), "--tls-auth-clients", "no", "--requirepass", "redis-secret-1", "--save", "",
         "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    password = tmp_path / "redis-password"
    password.write_text("redis-secret-1\n")
    url = f"rediss://127.0.0.1:{port}/0"
    try:
        process = ServerProcess("--redis-url", url, "--redis-tls-ca", str(certs["ca.pem"]), "--redis-password-file",
                                str(password)).start()
        try:
            with grpc.insecure_channel(process.target) as channel:
                app = plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=app_id))
            assert app.app_id == app_id
        finally:
            process.stop()
        unverified = ServerProcess("--redis-url", url, "--redis-password-file", str(password)).start(
            wait_serving=False)
        try:  # without the CA the certificate is not trusted: never serving
            unverified.wait_health(health_pb2.HealthCheckResponse.NOT_SERVING)
            with grpc.insecure_channel(unverified.target) as channel:
                assert _status(lambda: limit_pb2_grpc.LimitServiceStub(channel).CreateRoom(
                    limit_pb2.CreateRoomRequest(app_id=app_id, room_id="r"), timeout=5)) == \
                    grpc.StatusCode.UNAVAILABLE
        finally:
            unverified.stop()
    finally:
        redis_tls.terminate()
        redis_tls.wait()
