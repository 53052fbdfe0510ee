"""Bearer tokens: an admin token may call everything, a check token LimitService only.

Tokens come from IMLIMITS_ADMIN_TOKENS / IMLIMITS_CHECK_TOKENS (comma-separated)
or from --admin-tokens-file / --check-tokens-file (one per line), never from
the command line, which `ps` shows. Each entry is `NAME:TOKEN` or a bare
TOKEN; the name is what logs show. Several tokens at once allow rotation.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

# Open to any caller: load balancers and tools must reach them without a token.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
_CHECK_PREFIX = "/imlimits.v1.LimitService/"
# On LimitService but an operator's action (it may rewrite counts): admin tokens only.
_ADMIN_ONLY = {"/imlimits.v1.LimitService/VerifyUsage", "/imlimits.v1.LimitService/ImportGroups",
               "/imlimits.v1.LimitService/ExportGroups"}


class AuthConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Tokens:
    admin: dict[str, str]  # token -> name
    check: dict[str, str]

    @property
    def enabled(self) -> bool:
        return bool(self.admin or self.check)


def _entries(text: str, kind: str, where: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for index, raw in enumerate(text.replace(",", "\n").splitlines(), start=1):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, _, token = entry.rpartition(":")
        name = name or f"{kind}-{hashlib.sha256(token.encode()).hexdigest()[:8]}"
        if len(token) < 16:
            raise AuthConfigError(f"{where}: entry {index}: tokens must be at least 16 characters")
        found[token] = name
    return found


def load_tokens(admin_file: Path | None, check_file: Path | None, environ: Mapping[str, str] | None = None) -> Tokens:
    env = os.environ if environ is None else environ
    sets = {}
    for kind, path in (("admin", admin_file), ("check", check_file)):
        variable = f"IMLIMITS_{kind.upper()}_TOKENS"
        tokens = _entries(env.get(variable, ""), kind, variable)
        # Tokens asked for but none found would silently open every RPC to everyone.
        if env.get(variable, "").strip() and not tokens:
            raise AuthConfigError(f"{variable} is set but holds no token: give NAME:TOKEN entries, "
                                  "comma-separated, or unset it to run without tokens")
        if path is not None:
            try:
                from_file = _entries(path.read_text(), kind, str(path))
            except OSError as error:
                raise AuthConfigError(f"--{kind}-tokens-file {path}: {error.strerror}") from None
            if not from_file:
                raise AuthConfigError(f"--{kind}-tokens-file {path} holds no token: write one NAME:TOKEN per "
                                      "line, or leave the option out to run without tokens")
            tokens |= from_file
        sets[kind] = tokens
    return Tokens(sets["admin"], sets["check"])


def _match(presented: str, tokens: dict[str, str]) -> str | None:
    """The name of the matching token. Every token is compared, in constant time, so timing tells nothing."""
    found = None
    for token, name in tokens.items():
        if hmac.compare_digest(presented.encode(), token.encode()):
            found = name
    return found


def caller(tokens: Tokens, method: str, metadata: Mapping[str, str]) -> tuple[grpc.StatusCode | None, str]:
    """(None, caller name) when allowed, else (status, message)."""
    if method.startswith(_OPEN_PREFIXES) or not tokens.enabled:
        return None, "anonymous"
    header = metadata.get("authorization", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return grpc.StatusCode.UNAUTHENTICATED, "missing credentials: send 'authorization: Bearer TOKEN'"
    name = _match(presented, tokens.admin)
    if name is not None:
        return None, name
    name = _match(presented, tokens.check)
    if name is None:
        return grpc.StatusCode.UNAUTHENTICATED, "unknown token"
    if method.startswith(_CHECK_PREFIX) and method not in _ADMIN_ONLY:
        return None, name
    return (grpc.StatusCode.PERMISSION_DENIED,
            f"token {name!r} may call LimitService checks only; {method.rpartition('/')[2]} needs an admin token")


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, tokens: Tokens) -> None:
        self._tokens = tokens

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        metadata = {key: value for key, value in (handler_call_details.invocation_metadata or ())
                    if isinstance(value, str)}
        status, message = caller(self._tokens, handler_call_details.method, metadata)
        if status is None:
            return await continuation(handler_call_details)

        async def refuse(requests: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(status, message)

        # As a client-streaming handler the refusal never reads the request: an
        # unauthenticated caller cannot make the server buffer or parse its bytes.
        return grpc.stream_unary_rpc_method_handler(refuse)


def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def identify(tokens: Tokens) -> Callable[[Any], str]:
    """For the audit trail: the name of the token a call came with ("anonymous" without auth)."""

    def name_of(context: Any) -> str:
        metadata = {key: value for key, value in (context.invocation_metadata() or ()) if isinstance(value, str)}
        presented = metadata.get("authorization", "").partition(" ")[2]
        return (_match(presented, tokens.admin) or _match(presented, tokens.check) or "anonymous") if presented \
            else "anonymous"

    return name_of
