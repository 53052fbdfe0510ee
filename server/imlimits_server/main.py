"""Wiring: settings, the embedded redis-server, gRPC services, health, reflection and signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import grpc
import redis.exceptions
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from imlimits.v1 import limit_pb2, limit_pb2_grpc, plan_pb2, plan_pb2_grpc
from imlimits_server import auth, call_limits, event_loop, grpc_limits, metrics, price_list, redaction, workers
from imlimits_server import settings as settings_module
from imlimits_server.core.billing import Prices
from imlimits_server.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from imlimits_server.price_list import PriceListError
from imlimits_server.redaction import redact
from imlimits_server.release_worker import ReleaseWorker
from imlimits_server.service.decoding import StrictDecodingServer
from imlimits_server.service.limit_service import LimitService
from imlimits_server.service.plan_service import PlanService
from imlimits_server.settings import Settings
from imlimits_server.store import connections
from imlimits_server.store.redis_store import RedisStore

log = logging.getLogger("imlimits.server")

SERVICE_NAMES = (
    plan_pb2.DESCRIPTOR.services_by_name["PlanService"].full_name,
    limit_pb2.DESCRIPTOR.services_by_name["LimitService"].full_name,
)
_HEALTH_INTERVAL_SECONDS = 0.5
RELEASE_REDIS_TIMEOUT_SECONDS = 1.0
_EMBEDDED_CHECK_SECONDS = 0.2


class StartupError(Exception):
    pass


def create_grpc_server(interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
                       max_concurrent_rpcs: int = grpc_limits.DEFAULT_MAX_CONCURRENT_RPCS,
                       idle_timeout: float = grpc_limits.DEFAULT_IDLE_TIMEOUT_SECONDS,
                       max_streams_per_caller: int = grpc_limits.DEFAULT_MAX_STREAMS_PER_CALLER,
                       identify: call_limits.Identify = call_limits.peer_host) -> grpc.aio.Server:
    """The gRPC server every imlimits process uses (and the benchmark's no-op baseline, to compare like with like).

    SO_REUSEPORT lets several worker processes share one port; grpc_limits bounds what callers can make it hold,
    and call_limits how many calls it answers at once (health checks apart) and the streams of each caller, as
    `identify` names callers. Every handler registered on it answers INVALID_ARGUMENT to a request whose bytes
    do not parse.
    """
    limits = call_limits.CallLimits(max_concurrent_rpcs, max_streams_per_caller, identify)
    return StrictDecodingServer(grpc.aio.server(
        interceptors=[*interceptors, limits],
        options=[("grpc.so_reuseport", 1), *grpc_limits.server_options(idle_timeout)]))


def _check_exposure(settings: Settings, tokens: auth.Tokens) -> None:
    """Refuse what would expose the service: beyond loopback gRPC needs tokens and TLS, metrics (which have
    neither) need --insecure."""
    tls = settings.tls_cert is not None
    if not auth.is_loopback(settings.listen) and not (tokens.enabled and tls) and not settings.insecure:
        raise StartupError(
            f"refusing to listen on {settings.listen} without tokens and TLS: anyone who can reach it could change "
            "plans. Configure IMLIMITS_ADMIN_TOKENS/--admin-tokens-file and --tls-cert/--tls-key, "
            "or pass --insecure")
    if settings.metrics_listen and not auth.is_loopback(settings.metrics_listen) and not settings.insecure:
        raise StartupError(
            f"refusing to serve metrics on {settings.metrics_listen}: they have no tokens and no TLS, so anyone "
            "who can reach them reads them. Use a loopback address (the default host), or pass --insecure")


def _bind(server: grpc.aio.Server, settings: Settings, tokens: auth.Tokens) -> int:
    tls = settings.tls_cert is not None
    if not tokens.enabled:
        log.warning("no tokens configured: every caller may call every RPC (fine on loopback for development)")
    try:
        if not tls:
            return int(server.add_insecure_port(settings.listen))
        assert settings.tls_key is not None and settings.tls_cert is not None
        client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
        credentials = grpc.ssl_server_credentials(
            [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())], root_certificates=client_ca,
            require_client_auth=client_ca is not None)
        return int(server.add_secure_port(settings.listen, credentials))
    except RuntimeError:  # grpc's "Failed to bind": the address is taken or not on this host
        return 0


async def _verify_timezone(store: RedisStore, settings: Settings) -> None:
    """The time zone gives stored history its months: a silent change would rewrite bills."""
    recorded = await store.claim_timezone(settings.timezone)
    if recorded == settings.timezone:
        return
    if not settings.force_timezone:
        raise StartupError(
            f"--timezone {settings.timezone} differs from {recorded}, the zone this deployment's history was "
            "written in; months and bills would change meaning. Use --timezone "
            f"{recorded}, or --force-timezone to switch on purpose")
    log.warning("time zone switched from %s to %s by --force-timezone", recorded, settings.timezone)
    await store.set_timezone(settings.timezone)


async def _watch_redis(store: RedisStore, health_servicer: health.aio.HealthServicer, settings: Settings,
                       ready: asyncio.Event) -> None:
    """Health follows Redis: NOT_SERVING while it is unreachable, SERVING again when it answers.

    The server starts whether or not Redis is up (peer services that need it
    at start crash-loop through a Redis restart); the time zone is checked
    the first time Redis answers, and plan calls wait for that check.
    """
    serving, changed_before = False, False
    while True:
        try:
            now_serving = await store.ping()
            if now_serving and not ready.is_set():
                await _verify_timezone(store, settings)
                await store.hold_ids()  # the signing key, read once: a forged hold id then costs no Redis read
                ready.set()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            now_serving = False
        if now_serving != serving:
            status = health_pb2.HealthCheckResponse.SERVING if now_serving else \
                health_pb2.HealthCheckResponse.NOT_SERVING
            for name in ("", *SERVICE_NAMES):
                await health_servicer.set(name, status)
            # The first change is start-up reaching Redis; any later one is an outage or a recovery.
            log.log(logging.WARNING if changed_before else logging.INFO, "redis %s",
                    "reachable: serving" if now_serving else "unreachable: not serving")
            changed_before = True
            serving = now_serving
        await asyncio.sleep(_HEALTH_INTERVAL_SECONDS)


async def _supervise_embedded(embedded: EmbeddedRedis) -> None:
    """If the embedded redis-server dies, start it again on the same data directory."""
    while True:
        await asyncio.sleep(_EMBEDDED_CHECK_SECONDS)
        if not embedded.alive():
            log.warning("embedded redis-server exited: restarting it on %s", embedded.data_dir)
            try:
                await asyncio.to_thread(embedded.launch)
            except EmbeddedRedisError as error:
                log.error("embedded redis-server did not restart: %s", error)


async def serve(settings: Settings, redis_url: str, prices: Prices, tokens: auth.Tokens,
                embedded: EmbeddedRedis | None = None) -> None:
    password = settings.redis_password_file.read_text().strip() if settings.redis_password_file else None
    client = connections.connect(redis_url, settings.redis_timeout, settings.redis_max_pending, password,
                                 settings.redis_tls_ca)
    store = RedisStore(client)
    ready = asyncio.Event()

    interceptors: list[grpc.aio.ServerInterceptor] = []
    if settings.metrics_listen:
        metrics.serve_metrics(settings.metrics_listen)
        interceptors.append(metrics.MetricsInterceptor())
    if tokens.enabled:
        interceptors.append(auth.AuthInterceptor(tokens))
    server = create_grpc_server(interceptors, settings.max_concurrent_rpcs, settings.idle_timeout,
                                settings.max_streams_per_caller,
                                auth.identify(tokens) if tokens.enabled else call_limits.peer_host)
    plan_pb2_grpc.add_PlanServiceServicer_to_server(
        PlanService(store, settings.tz, lambda: datetime.now(UTC), settings.trust_client_time, prices, ready,
                    auth.identify(tokens)),
        server)
    limit_pb2_grpc.add_LimitServiceServicer_to_server(LimitService(store), server)
    health_servicer = health.aio.HealthServicer()
    # grpc's servicer starts with "" SERVING; nothing is served until Redis has answered.
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = _bind(server, settings, tokens)
    if port == 0:
        raise StartupError(f"cannot listen on {settings.listen}: the address is in use or not on this host")
    await server.start()
    host = settings.listen.rsplit(":", 1)[0]
    log.info("imlimits serving on %s:%d (redis %s, time zone %s, event loop %s)", host, port, redact(redis_url),
             settings.timezone, settings.event_loop)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = asyncio.create_task(_watch_redis(store, health_servicer, settings, ready))
    watcher.add_done_callback(lambda _: stop.set())  # it ends only on a time-zone refusal
    tasks = [watcher] + ([asyncio.create_task(_supervise_embedded(embedded))] if embedded else [])
    # The worker's calls are bounded scripts nobody waits on: a reply slowed by a busy Redis is still an
    # answer, and a timeout would drop the connection and send the worker into its backoff.
    release_client = connections.connect(redis_url, max(settings.redis_timeout, RELEASE_REDIS_TIMEOUT_SECONDS),
                                         settings.redis_max_pending, password, settings.redis_tls_ca)
    release_worker = ReleaseWorker(RedisStore(release_client), store.release_wanted)
    release_worker.start()
    await stop.wait()

    log.info("stopping: finishing in-flight calls for up to %.1f s", settings.shutdown_grace)
    await health_servicer.enter_graceful_shutdown()
    await server.stop(settings.shutdown_grace)
    await release_worker.stop(settings.shutdown_grace)
    await release_client.close()
    for task in tasks:
        task.cancel()
    await client.close()
    if watcher.done() and not watcher.cancelled() and watcher.exception() is not None:
        raise watcher.exception()  # type: ignore[misc]
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = workers.worker_args() or sys.argv[1:]
    argv = list(argv)
    settings = settings_module.parse(argv)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redaction.install()
    try:
        prices = price_list.load(settings.price_list)
        tokens = auth.load_tokens(settings.admin_tokens_file, settings.check_tokens_file)
        for path in (settings.tls_cert, settings.tls_key, settings.tls_client_ca, settings.redis_tls_ca,
                     settings.redis_password_file):
            if path is not None and not path.is_file():
                raise StartupError(f"{path} not found")
    except PriceListError as error:
        log.error("--price-list %s", error)
        return 2
    except (auth.AuthConfigError, StartupError) as error:
        log.error("%s", error)
        return 2
    embedded = None if settings.redis_url else EmbeddedRedis(settings.data_dir)
    try:
        _check_exposure(settings, tokens)
        redis_url = settings.redis_url or embedded.start()  # type: ignore[union-attr]
        if settings.workers > 1:
            return workers.supervise(argv, settings.workers, settings.listen, redis_url, settings.shutdown_grace,
                                     settings.metrics_listen)
        event_loop.run(serve(settings, redis_url, prices, tokens, embedded), settings.event_loop)
    except (EmbeddedRedisError, StartupError) as error:
        log.error("%s", error)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
