"""`imlimits-console --listen HOST:PORT --target HOST:PORT`: serve the web console.

Binds loopback by default. Listening anywhere else needs --sign-in (operators
sign in with an admin token of their own) and HTTPS (--https-cert/--https-key),
or --insecure-http behind a proxy that terminates TLS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
import uvicorn

from imlimits_client.transport import is_loopback_host
from imlimits_console.security import own_host_names
from imlimits_console.web import ConsoleSettings, create_app

DEFAULT_LISTEN = "127.0.0.1:8080"
DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT = 5.0
EXIT_USAGE = 2


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imlimits-console",
        description="The imlimits web console: apps, 升级 / 变配 / 停用 with a cost preview, usage, history, bills.")
    parser.add_argument("--listen", metavar="HOST:PORT",
                        default=os.environ.get("IMLIMITS_CONSOLE_LISTEN", DEFAULT_LISTEN),
                        help="where to serve; port 0 picks a free one, printed at start "
                             f"(default: $IMLIMITS_CONSOLE_LISTEN, else {DEFAULT_LISTEN})")
    parser.add_argument("--target", metavar="HOST:PORT", default=os.environ.get("IMLIMITS_TARGET", DEFAULT_TARGET),
                        help=f"the imlimits server (default: $IMLIMITS_TARGET, else {DEFAULT_TARGET})")
    parser.add_argument("--timeout", type=float, metavar="SECONDS", default=DEFAULT_TIMEOUT,
                        help=f"seconds to wait for the server on each call (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--allowed-host", metavar="NAME", action="append",
                        default=_names(os.environ.get("IMLIMITS_CONSOLE_ALLOWED_HOSTS", "")),
                        help="a further host name browsers may reach the console by, e.g. a TLS proxy's public "
                             "name; repeatable (default: $IMLIMITS_CONSOLE_ALLOWED_HOSTS, comma-separated, else "
                             "only the --listen address's own names: localhost and the loopback address)")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help="file holding the admin token the console uses; not with --sign-in "
                             "(default: $IMLIMITS_TOKEN, else no token)")
    parser.add_argument("--tls-ca", type=Path, metavar="FILE",
                        help="PEM CA to verify the server's certificate: connect with TLS (default: plaintext)")
    parser.add_argument("--tls-cert", type=Path, metavar="FILE",
                        help="PEM client certificate, for mutual TLS; needs --tls-ca (default: none)")
    parser.add_argument("--tls-key", type=Path, metavar="FILE",
                        help="PEM client key, for mutual TLS; needs --tls-ca (default: none)")
    parser.add_argument("--sign-in", action="store_true",
                        help="operators sign in with their own admin token; needed to listen beyond loopback "
                             "(default: off, the console uses --token-file)")
    parser.add_argument("--https-cert", type=Path, metavar="FILE",
                        help="PEM certificate: serve the console over HTTPS (default: plain HTTP)")
    parser.add_argument("--https-key", type=Path, metavar="FILE", help="PEM key for --https-cert (default: none)")
    parser.add_argument("--insecure-http", action="store_true",
                        help="allow plain HTTP beyond loopback, only behind a proxy that terminates TLS "
                             "(default: off)")
    return parser


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or int(port) > 65535:
        raise UsageError(f"--listen: must be HOST:PORT, got {listen!r}")
    return host, int(port)


def settings_from(args: argparse.Namespace) -> ConsoleSettings:
    host, _ = split_listen(args.listen)
    if not is_loopback_host(host):
        if not args.sign_in:
            raise UsageError(f"--listen {args.listen} is not loopback: anyone who reaches it could change plans. "
                             "Add --sign-in (operators sign in with an admin token), or listen on 127.0.0.1.")
        if not args.https_cert and not args.insecure_http:
            raise UsageError(f"--listen {args.listen} is not loopback: admin tokens must not cross the network in "
                             "clear. Give --https-cert and --https-key, or --insecure-http behind a TLS proxy.")
    if bool(args.https_cert) != bool(args.https_key):
        raise UsageError("--https-cert and --https-key go together")
    token = args.token_file.read_text().strip() if args.token_file else os.environ.get("IMLIMITS_TOKEN")
    if args.sign_in and args.token_file:
        raise UsageError("--sign-in and --token-file exclude each other: with sign-in each operator's token is used")
    if args.tls_ca is None:
        if args.tls_cert or args.tls_key:
            raise UsageError("--tls-cert and --tls-key need --tls-ca")
        credentials = None
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=args.tls_ca.read_bytes(),
            private_key=args.tls_key.read_bytes() if args.tls_key else None,
            certificate_chain=args.tls_cert.read_bytes() if args.tls_cert else None)
    configured = tuple(name.lower() for name in args.allowed_host)
    return ConsoleSettings(target=args.target, token=None if args.sign_in else token, credentials=credentials,
                           sign_in=args.sign_in, https=bool(args.https_cert), timeout=args.timeout,
                           allowed_hosts=tuple(own_host_names(host, configured)), configured_hosts=configured)


async def serve(args: argparse.Namespace, settings: ConsoleSettings) -> None:
    host, port = split_listen(args.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(128)
    bound = listener.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning", access_log=False, proxy_headers=False,
                            server_header=False, lifespan="on",
                            ssl_certfile=str(args.https_cert) if args.https_cert else None,
                            ssl_keyfile=str(args.https_key) if args.https_key else None)
    server = uvicorn.Server(config)
    scheme = "https" if settings.https else "http"
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"imlimits-console: serving on {scheme}://{shown}:{bound}/ (imlimits server {settings.target}"
          f"{', operators sign in' if settings.sign_in else ''})", flush=True)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: setattr(server, "should_exit", True))
    await server.serve(sockets=[listener])


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_from(args)
    except UsageError as error:
        print(f"imlimits-console: {error}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(f"imlimits-console: {error.filename}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        asyncio.run(serve(args, settings))
    except OSError as error:
        print(f"imlimits-console: cannot listen on {args.listen}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
