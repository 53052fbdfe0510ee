"""How a client reaches the service: a bearer token goes in plaintext only to this host, or with consent."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import grpc


class PlaintextTokenRefused(ValueError):
    """A token would have crossed the network unencrypted: use TLS, or say insecure=True."""


def is_local(target: str) -> bool:
    """Whether a gRPC target stays on this host: a Unix socket, localhost or a loopback address."""
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    for scheme in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(scheme):
            target = target[len(scheme):]
            break
    if target.startswith("["):
        host = target[1:target.find("]")]
    elif target.count(":") == 1:
        host = target.partition(":")[0]
    else:
        host = target  # a bare name, or an IPv6 address without a port
    return is_loopback_host(host)


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address (without port or brackets) is this host: localhost or a loopback address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_token_transport(target: str, token: str | None, credentials: grpc.ChannelCredentials | None,
                          insecure: bool) -> None:
    if token and credentials is None and not insecure and not is_local(target):
        raise PlaintextTokenRefused(
            f"refusing to send the token in plaintext to {target}: anyone on the path could read and reuse it. "
            "Connect with TLS (credentials=; --tls or --tls-ca FILE on the command line), or allow plaintext "
            "explicitly (insecure=True; --insecure)")


def system_credentials() -> grpc.ChannelCredentials:
    """TLS verified by this system's CAs (OpenSSL's default bundle, SSL_CERT_FILE where set)."""
    bundle = ssl.get_default_verify_paths().cafile
    roots = Path(bundle).read_bytes() if bundle and Path(bundle).is_file() else None
    return grpc.ssl_channel_credentials(root_certificates=roots)  # None: grpc's own bundle
