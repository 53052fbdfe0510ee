"""A real Synapse homeserver for tests, the bench and `make run-synapse`: SQLite, loopback, no federation.

The homeserver runs in its own virtual environment (.venv-synapse, made by
`make .venv-synapse/.installed`), with the imlimits module installed there as
an operator would install it. This file only writes its configuration, starts
and stops it, and speaks the Matrix client-server API over plain HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import WatchedProcess

REPOSITORY = Path(__file__).resolve().parents[3]
SYNAPSE_PYTHON = Path(os.environ.get("IMLIMITS_SYNAPSE_PYTHON", REPOSITORY / ".venv-synapse" / "bin" / "python"))
SERVER_NAME = "localhost"
START_TIMEOUT_SECONDS = 60.0
# Registration and joins in tests come faster than any person's; Synapse's defaults would answer 429.
_UNLIMITED = {"per_second": 10000, "burst_count": 10000}
_RATE_LIMITS = ["rc_message", "rc_registration", "rc_admin_redaction", "rc_joins_per_room", "rc_3pid_validation",
                "rc_room_creation", "rc_profile", "rc_presence"]


def homeserver_config(data_dir: Path, module_config: Mapping[str, Any] | None, port: int = 0,
                      host: str = "127.0.0.1", open_registration: bool = False,
                      modules_before: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """homeserver.yaml as a dict (JSON is YAML): loopback only, federation effectively off, fast password hashing."""
    config: dict[str, Any] = {
        "server_name": SERVER_NAME,
        "public_baseurl": f"http://{host}:{port or 8008}/",
        "pid_file": str(data_dir / "homeserver.pid"),
        "listeners": [{"port": port, "bind_addresses": [host], "type": "http", "tls": False,
                       "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
        "database": {"name": "sqlite3", "args": {"database": str(data_dir / "homeserver.db")}},
        "media_store_path": str(data_dir / "media"),
        "signing_key_path": str(data_dir / "signing.key"),
        "log_config": str(data_dir / "log.yaml"),
        "registration_shared_secret": secrets.token_hex(16),
        "macaroon_secret_key": secrets.token_hex(16),
        "form_secret": secrets.token_hex(16),
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "bcrypt_rounds": 4,
        "enable_metrics": False,
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
        "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
        "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
        **{name: _UNLIMITED for name in _RATE_LIMITS},
    }
    if open_registration:
        # Only for `make run-synapse` on loopback: anyone who can reach it may make an account.
        config |= {"enable_registration": True, "enable_registration_without_verification": True}
    modules = [dict(module) for module in modules_before]
    if module_config is not None:
        modules.append({"module": "imlimits_synapse.LimitsModule", "config": dict(module_config)})
    if modules:
        config["modules"] = modules
    return config


_LOG_CONFIG = {
    "version": 1,
    "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stdout"}},
    "loggers": {"synapse.access": {"level": "WARNING"}, "synapse.storage": {"level": "WARNING"},
                "imlimits_synapse": {"level": "DEBUG"}},
    "root": {"level": "INFO", "handlers": ["console"]},
    "disable_existing_loggers": False,
}


def write_config(data_dir: Path, module_config: Mapping[str, Any] | None, port: int = 0, host: str = "127.0.0.1",
                 open_registration: bool = False, modules_before: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = homeserver_config(data_dir, module_config, port, host, open_registration, modules_before)
    (data_dir / "homeserver.yaml").write_text(json.dumps(config, indent=2))
    (data_dir / "log.yaml").write_text(json.dumps(_LOG_CONFIG))
    key = data_dir / "signing.key"
    if not key.exists():
        # signedjson's format: algorithm, version, the unpadded base64 of the 32-byte ed25519 seed.
        seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        key.write_text(f"ed25519 a_test {seed}\n")
    return config


class HomeserverProcess(WatchedProcess):
    """One Synapse homeserver; its port is read from its own start-up line."""

    name = "synapse"
    ready_timeout = START_TIMEOUT_SECONDS

    def __init__(self, data_dir: Path, module_config: Mapping[str, Any] | None, *, asyncio_reactor: bool = False,
                 env: dict[str, str] | None = None, modules_before: Sequence[Mapping[str, Any]] = ()) -> None:
        reactor = {"SYNAPSE_ASYNC_IO_REACTOR": "1"} if asyncio_reactor else {}
        super().__init__(env={**reactor, **(env or {})}, cwd=data_dir)
        self.data_dir = data_dir
        self.config = write_config(data_dir, module_config, modules_before=modules_before)
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if not SYNAPSE_PYTHON.exists():
            raise RuntimeError(f"{SYNAPSE_PYTHON} is missing: run `make test-synapse`, which installs Synapse")
        return [str(SYNAPSE_PYTHON), "-m", "synapse.app.homeserver", "-c", str(self.data_dir / "homeserver.yaml")]

    def read_ready(self, line: str) -> bool:
        match = re.search(r"Synapse now listening on TCP port (\d+)", line)
        if match:
            self.port = int(match.group(1))
        return match is not None

    def start(self) -> HomeserverProcess:
        self.launch()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            try:
                if request(self.url, "GET", "/_matrix/client/versions").status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("synapse never answered /_matrix/client/versions:\n" + "".join(self.output))

    def log(self) -> str:
        return "".join(self.output)

    def register(self, localpart: str, admin: bool = False) -> Matrix:
        """A user made through the shared-secret admin API, logged in."""
        nonce = request(self.url, "GET", "/_synapse/admin/v1/register").json()["nonce"]
        password = "pw-" + localpart
        kind = b"admin" if admin else b"notadmin"
        mac = hmac.new(self.config["registration_shared_secret"].encode(),
                       b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), kind]),
                       hashlib.sha1).hexdigest()
        answer = request(self.url, "POST", "/_synapse/admin/v1/register",
                         {"nonce": nonce, "username": localpart, "password": password, "admin": admin, "mac": mac})
        answer.expect(200)
        return Matrix(self.url, answer.json()["user_id"], answer.json()["access_token"])


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body or b"{}")

    def expect(self, status: int) -> Any:
        assert self.status == status, f"HTTP {self.status} (expected {status}): {self.body.decode(errors='replace')}"
        return self.json()


def request(base: str, method: str, path: str, body: Any = None, token: str | None = None,
            timeout: float = 30.0) -> Answer:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    started = time.monotonic()
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data, headers, method=method),
                                    timeout=timeout) as response:
            return Answer(response.status, response.read(), time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read(), time.monotonic() - started)


@dataclass
class Matrix:
    """A logged-in Matrix user, speaking the client-server API as a client would."""

    base: str
    user_id: str
    token: str
    _txn: list[int] = field(default_factory=lambda: [0])

    def call(self, method: str, path: str, body: Any = None) -> Answer:
        return request(self.base, method, path, body, self.token)

    def create_room(self, **config: Any) -> Answer:
        return self.call("POST", "/_matrix/client/v3/createRoom", config)

    def join(self, room_id: str) -> Answer:
        return self.call("POST", f"/_matrix/client/v3/join/{quote(room_id)}", {})

    def leave(self, room_id: str) -> Answer:
        return self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/leave", {})

    def invite(self, room_id: str, user_id: str) -> Answer:
        return self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite", {"user_id": user_id})

    def kick(self, room_id: str, user_id: str) -> Answer:
        return self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/kick", {"user_id": user_id})

    def ban(self, room_id: str, user_id: str) -> Answer:
        return self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/ban", {"user_id": user_id})

    def send(self, room_id: str, text: str) -> Answer:
        self._txn[0] += 1
        return self.call("PUT", f"/_matrix/client/v3/rooms/{quote(room_id)}/send/m.room.message/t{self._txn[0]}",
                         {"msgtype": "m.text", "body": text})

    def joined_members(self, room_id: str) -> set[str]:
        answer = self.call("GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/joined_members")
        return set(answer.expect(200)["joined"])


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def main(argv: list[str] | None = None) -> int:
    """`make run-synapse`: a homeserver with the module, in front of the imlimits server of `make run`."""
    import argparse

    from imlimits_client import AlreadyExists, Client, Unavailable

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--listen", default="127.0.0.1:8008")
    parser.add_argument("--target", default="127.0.0.1:50051")
    parser.add_argument("--app-id", type=int, default=1400000001)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    with Client(args.target, admin_timeout=3) as client:
        try:
            client.admin.create_app(args.app_id)
            print(f"created app {args.app_id} in imlimits at {args.target} (TRIAL: 20 members per room)")
        except AlreadyExists:
            print(f"app {args.app_id} exists in imlimits at {args.target}")
        except Unavailable:
            print(f"imlimits does not answer at {args.target}: start it first (`make run` in another shell)")
            return 1
    data_dir = args.data_dir.resolve()
    write_config(data_dir, {"target": args.target, "app_id": args.app_id, "hold_seconds": 30,
                            "on_unavailable": "deny", "admin_contact": "mailto:ops@example.com"},
                 int(port), host, open_registration=True)
    print(f"Synapse with the imlimits module on http://{args.listen}/ (server name {SERVER_NAME}); "
          f"its data in {data_dir}. The walk-through: docs/synapse.md, 'Watch a room fill up'.", flush=True)
    command = [str(SYNAPSE_PYTHON), "-m", "synapse.app.homeserver", "-c", str(data_dir / "homeserver.yaml")]
    os.chdir(data_dir)
    os.execv(command[0], command)


if __name__ == "__main__":
    sys.exit(main())
