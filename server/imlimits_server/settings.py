"""Settings: each flag of `imlimits-server` also read from an IMLIMITS_* environment variable."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from imlimits_server.event_loop import DEFAULT_EVENT_LOOP, EVENT_LOOPS, EventLoop
from imlimits_server.grpc_limits import (
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONCURRENT_RPCS,
    DEFAULT_MAX_STREAMS_PER_CALLER,
)


@dataclass(frozen=True)
class Settings:
    listen: str = "127.0.0.1:50051"
    redis_url: str | None = None
    data_dir: Path = Path("imlimits-data")
    timezone: str = "Asia/Shanghai"
    price_list: Path | None = None
    force_timezone: bool = False
    trust_client_time: bool = False
    redis_timeout: float = 0.1
    redis_max_pending: int = 10_000
    shutdown_grace: float = 5.0
    workers: int = 1
    admin_tokens_file: Path | None = None
    check_tokens_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    insecure: bool = False
    metrics_listen: str | None = None
    redis_password_file: Path | None = None
    redis_tls_ca: Path | None = None
    log_level: str = "INFO"
    event_loop: EventLoop = DEFAULT_EVENT_LOOP
    max_concurrent_rpcs: int = DEFAULT_MAX_CONCURRENT_RPCS
    max_streams_per_caller: int = DEFAULT_MAX_STREAMS_PER_CALLER
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT_SECONDS

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


# Numbers in flags and IMLIMITS_* variables are ASCII: int() and float() would
# also read Arabic-Indic or fullwidth digits (U+0664 as 4), which no operator means.
_ASCII_INT = re.compile(r"[0-9]+")
_ASCII_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?|\.[0-9]+")
# [HOST:]PORT: a bare port (or ":PORT") means loopback, see _loopback_by_default.
_HOST_PORT = re.compile(r"(.*:)?[0-9]+")


def _ascii_int(text: str) -> int:
    if not _ASCII_INT.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be a whole number in ASCII digits, got {text!r}")
    return int(text)


def _ascii_seconds(text: str) -> float:
    if not _ASCII_SECONDS.fullmatch(text):
        raise argparse.ArgumentTypeError(f"must be seconds in ASCII digits such as 0.5, got {text!r}")
    return float(text)


def _env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def parse(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    default = Settings()

    def env_or(name: str, fallback: object) -> object:
        return env.get(f"IMLIMITS_{name}", fallback)

    parser = argparse.ArgumentParser(
        prog="imlimits-server",
        description="Enforce IM plan limits over gRPC. Without --redis-url it starts and owns a private "
                    "redis-server with persistence in --data-dir. Every flag is also IMLIMITS_<FLAG>.",
    )
    parser.add_argument("--listen", default=env_or("LISTEN", default.listen),
                        help="HOST:PORT to serve gRPC on; port 0 picks a free one (default %(default)s)")
    parser.add_argument("--redis-url", default=env_or("REDIS_URL", default.redis_url),
                        help="redis://HOST:PORT/DB or unix:///path; omitted: the embedded redis-server")
    parser.add_argument("--data-dir", type=Path, default=env_or("DATA_DIR", default.data_dir),
                        help="where the embedded redis-server keeps its data (default %(default)s)")
    parser.add_argument("--timezone", default=env_or("TIMEZONE", default.timezone),
                        help="time zone of calendar months for the monthly rule and bills (default %(default)s)")
    parser.add_argument("--price-list", type=Path, default=env_or("PRICE_LIST", None),
                        help="TOML price list for bills; default: the one shipped in the package")
    parser.add_argument("--force-timezone", action="store_true",
                        default=_env_flag(env.get("IMLIMITS_FORCE_TIMEZONE")),
                        help="accept a --timezone other than the one the stored history was written in")
    parser.add_argument("--trust-client-time", action="store_true",
                        default=_env_flag(env.get("IMLIMITS_TRUST_CLIENT_TIME")),
                        help="honour `at` in plan requests (migrations and tests); otherwise it is refused")
    parser.add_argument("--redis-timeout", type=_ascii_seconds, default=env_or("REDIS_TIMEOUT", default.redis_timeout),
                        help="seconds a Redis call may take before the RPC answers UNAVAILABLE (default %(default)s)")
    parser.add_argument("--redis-max-pending", type=_ascii_int,
                        default=env_or("REDIS_MAX_PENDING", default.redis_max_pending),
                        help="Redis commands that may wait at once per process; more answer UNAVAILABLE "
                             "(default %(default)s)")
    parser.add_argument("--shutdown-grace", type=_ascii_seconds,
                        default=env_or("SHUTDOWN_GRACE", default.shutdown_grace),
                        help="seconds in-flight calls may finish after SIGTERM (default %(default)s)")
    parser.add_argument("--workers", type=_ascii_int, default=env_or("WORKERS", default.workers),
                        help="server processes sharing the port (SO_REUSEPORT); default %(default)s")
    parser.add_argument("--admin-tokens-file", type=Path, default=env_or("ADMIN_TOKENS_FILE", None),
                        help="admin bearer tokens, one per line (NAME:TOKEN or TOKEN); also IMLIMITS_ADMIN_TOKENS")
    parser.add_argument("--check-tokens-file", type=Path, default=env_or("CHECK_TOKENS_FILE", None),
                        help="check bearer tokens (LimitService only); also IMLIMITS_CHECK_TOKENS")
    parser.add_argument("--tls-cert", type=Path, default=env_or("TLS_CERT", None), help="PEM server certificate")
    parser.add_argument("--tls-key", type=Path, default=env_or("TLS_KEY", None), help="PEM server private key")
    parser.add_argument("--tls-client-ca", type=Path, default=env_or("TLS_CLIENT_CA", None),
                        help="PEM CA that client certificates must chain to (mutual TLS)")
    parser.add_argument("--insecure", action="store_true", default=_env_flag(env.get("IMLIMITS_INSECURE")),
                        help="allow a non-loopback --listen without tokens and TLS")
    parser.add_argument("--redis-password-file", type=Path, default=env_or("REDIS_PASSWORD_FILE", None),
                        help="file holding the Redis password (instead of putting it in --redis-url)")
    parser.add_argument("--redis-tls-ca", type=Path, default=env_or("REDIS_TLS_CA", None),
                        help="PEM CA that verifies a Redis served over TLS (rediss://)")
    parser.add_argument("--metrics-listen", default=env_or("METRICS_LISTEN", None),
                        help="[HOST:]PORT for Prometheus metrics over HTTP (default: off; HOST defaults to 127.0.0.1, "
                             "a non-loopback HOST needs --insecure); with --workers N, worker k uses PORT+k")
    parser.add_argument("--max-concurrent-rpcs", type=int,
                        default=env_or("MAX_CONCURRENT_RPCS", default.max_concurrent_rpcs),
                        help="calls one process answers at once, health checks not counted; more answer "
                             "RESOURCE_EXHAUSTED (default %(default)s)")
    parser.add_argument("--max-streams-per-caller", type=int,
                        default=env_or("MAX_STREAMS_PER_CALLER", default.max_streams_per_caller),
                        help="streaming calls one caller (token name, else address) may hold open at once; more "
                             "answer RESOURCE_EXHAUSTED (default %(default)s)")
    parser.add_argument("--idle-timeout", type=float, default=env_or("IDLE_TIMEOUT", default.idle_timeout),
                        help="seconds after which a connection with no calls is closed (default %(default)s)")
    parser.add_argument("--log-level", default=env_or("LOG_LEVEL", default.log_level),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--event-loop", default=env_or("EVENT_LOOP", default.event_loop), choices=EVENT_LOOPS,
                        help="the event loop of each server process (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        parser.error(f"--timezone: unknown time zone {args.timezone!r} (use an IANA name such as Asia/Shanghai)")
    if float(args.redis_timeout) <= 0 or int(args.redis_max_pending) < 1:
        parser.error("--redis-timeout and --redis-max-pending must be positive")
    if int(args.max_concurrent_rpcs) < 1 or int(args.max_streams_per_caller) < 1 or float(args.idle_timeout) <= 0:
        parser.error("--max-concurrent-rpcs, --max-streams-per-caller and --idle-timeout must be positive")
    if args.event_loop not in EVENT_LOOPS:  # argparse checks choices on the command line, not in IMLIMITS_*
        parser.error(f"--event-loop (IMLIMITS_EVENT_LOOP) must be one of {', '.join(EVENT_LOOPS)}, "
                     f"got {args.event_loop!r}")
    if int(args.workers) < 1:
        parser.error("--workers must be at least 1")
    if args.metrics_listen and not _HOST_PORT.fullmatch(args.metrics_listen):
        parser.error(f"--metrics-listen must be [HOST:]PORT with the port in ASCII digits, got {args.metrics_listen!r}")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_client_ca and not args.tls_cert:
        parser.error("--tls-client-ca needs --tls-cert and --tls-key")
    return Settings(
        listen=args.listen,
        redis_url=args.redis_url or None,
        data_dir=Path(args.data_dir),
        timezone=args.timezone,
        price_list=Path(args.price_list) if args.price_list else None,
        force_timezone=args.force_timezone,
        trust_client_time=args.trust_client_time,
        redis_timeout=float(args.redis_timeout),
        redis_max_pending=int(args.redis_max_pending),
        shutdown_grace=float(args.shutdown_grace),
        workers=int(args.workers),
        admin_tokens_file=_path(args.admin_tokens_file),
        check_tokens_file=_path(args.check_tokens_file),
        tls_cert=_path(args.tls_cert),
        tls_key=_path(args.tls_key),
        tls_client_ca=_path(args.tls_client_ca),
        insecure=bool(args.insecure),
        metrics_listen=_loopback_by_default(args.metrics_listen) if args.metrics_listen else None,
        redis_password_file=_path(args.redis_password_file),
        redis_tls_ca=_path(args.redis_tls_ca),
        log_level=args.log_level,
        event_loop=args.event_loop,
        max_concurrent_rpcs=int(args.max_concurrent_rpcs),
        max_streams_per_caller=int(args.max_streams_per_caller),
        idle_timeout=float(args.idle_timeout),
    )


def _loopback_by_default(listen: str) -> str:
    """`9090` and `:9090` mean loopback: metrics have no tokens, so all interfaces must be asked for by name."""
    host, _, port = str(listen).rpartition(":")
    return listen if host else f"127.0.0.1:{port}"


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None
