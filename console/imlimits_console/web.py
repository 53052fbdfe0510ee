"""The console's pages: server-rendered, every action a plain form post, no script needed.

Each page is a client of the gRPC API through imlimits_client, like the
command line: what a page shows (plans, locks, previews, bills, refusals) is
what the service answered, never a rule re-derived here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from imlimits_client import (
    AlreadyExists,
    AppStatus,
    AsyncClient,
    Bill,
    Edition,
    ImlimitsError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PlanChange,
    PlanRuleViolation,
    Unauthenticated,
    Unavailable,
)
from imlimits_client.display import money
from imlimits_client.types import zone_name
from imlimits_console import chart, forms, wording, words
from imlimits_console.forms import FormError, PlanChangeForm
from imlimits_console.security import (
    CSRF_FIELD,
    SESSION_COOKIE,
    CsrfTokens,
    SessionIds,
    SignIns,
    own_host_names,
    same_origin,
)
from imlimits_console.wording import Refusal

log = logging.getLogger("imlimits.console")

_HERE = Path(__file__).parent
APPS_PER_PAGE = 24
_MONTH = re.compile(r"\d{4}-\d{2}")
LOOPBACK_NAMES = tuple(own_host_names("127.0.0.1"))
_DONE = ("created", "upgraded", "changed", "deactivated")
# No script, style or frame from anywhere else; forms post only here.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser sends `Origin: null` with the console's own form posts, which
    # the Origin check must refuse. same-origin sends no referrer to other sites all the same.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleSettings:
    target: str
    # Loopback mode: the console calls the service with this token (or none).
    token: str | None = None
    credentials: grpc.ChannelCredentials | None = None
    # Sign-in mode: every operator signs in with an admin token of their own.
    sign_in: bool = False
    https: bool = False
    timeout: float = 5.0
    # The Host names served (the listen address's own and the configured ones), and the configured ones alone.
    allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES
    configured_hosts: tuple[str, ...] = ()


class Console:
    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.csrf = CsrfTokens()
        self.session_ids = SessionIds()
        self.sign_ins = SignIns(self.session_ids)
        self._clients: dict[str | None, AsyncClient] = {}
        self.templates = Jinja2Templates(directory=_HERE / "templates")
        self.templates.env.globals["money"] = money
        self.templates.env.globals["quote"] = lambda text: quote(str(text), safe="")
        self.templates.env.globals["bill_rule"] = wording.bill_rule
        self.templates.env.globals["bill_line"] = wording.bill_line
        self.templates.env.globals["spelled"] = wording.value

    # Wiring

    def client(self, request: Request) -> AsyncClient:
        token = self.sign_ins.token(request.state.session_id) if self.settings.sign_in else self.settings.token
        if token not in self._clients:
            self._clients[token] = AsyncClient(self.settings.target, admin_timeout=self.settings.timeout,
                                               check_timeout=self.settings.timeout, on_unavailable="raise",
                                               token=token, credentials=self.settings.credentials)
        return self._clients[token]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def language(self, request: Request) -> str:
        return words.negotiate(request.cookies.get("lang"), request.headers.get("accept-language"))

    def say(self, request: Request) -> words.Translator:
        return words.translator(self.language(request))

    def refusal(self, request: Request, error: ImlimitsError) -> Refusal:
        return wording.refusal(self.say(request), error)

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> Response:
        language = self.language(request)
        session_id = request.state.session_id
        base = {
            "t": words.translator(language), "lang": language, "csrf_field": CSRF_FIELD,
            "csrf": self.csrf.token(session_id), "sign_in_mode": self.settings.sign_in,
            "signed_in": self.sign_ins.token(session_id) is not None, "here": _here(request),
            "target": self.settings.target, "banner": None, "flash": None,
        }
        return self.templates.TemplateResponse(request, template, {**base, **context}, status_code=status)

    async def form(self, request: Request) -> FormData:
        """The posted form, if it carries this browser's CSRF token; else CsrfRefused."""
        form = await request.form()
        submitted = form.get(CSRF_FIELD)
        if not self.csrf.valid(request.state.session_id, submitted if isinstance(submitted, str) else None):
            raise CsrfRefused
        return form

    # Apps

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/apps", status_code=303)

    async def apps(self, request: Request, error: Refusal | None = None, status: int = 200) -> Response:
        client = self.client(request)
        page = await client.admin.list_apps(APPS_PER_PAGE, request.query_params.get("page", ""))
        usages = await asyncio.gather(*(client.check.usage(app.app_id) for app in page.apps))
        return self.page(request, "apps.html", status, cards=list(zip(page.apps, usages, strict=True)),
                         next_page=page.next_page_token, paged=bool(request.query_params.get("page")),
                         error=error, flash=_flash(request))

    async def create_app(self, request: Request) -> Response:
        form = await self.form(request)
        text = str(form.get("app_id", "")).strip()
        say = self.say(request)
        if not (text.isascii() and text.isdigit() and 0 < int(text) < 2**64):
            return await self.apps(request, Refusal("invalid", say("app_id.invalid")), 400)
        try:
            await self.client(request).admin.create_app(int(text))
        except (InvalidArgument, PlanRuleViolation) as error:
            return await self.apps(request, self.refusal(request, error), 400)
        except AlreadyExists:
            return await self.apps(request, Refusal("refused", say("app_exists", app=int(text))), 409)
        return RedirectResponse(f"/apps/{int(text)}?done=created", status_code=303)

    # One app: 基础配置

    async def app_page(self, request: Request, dialog: str | None = None, status: int = 200,
                       **dialog_context: Any) -> Response:
        app_id = request.path_params["app_id"]
        client = self.client(request)
        app, this_month, changes = await asyncio.gather(client.admin.get_app(app_id), current_bill(client, app_id),
                                                        client.admin.list_plan_changes(app_id))
        # The dialogs the page offers: 升级 on Trial, 变配 on Pro/Ultimate, nothing on a deactivated app.
        # (The service refuses the others anyway; an address typed by hand just shows the page.)
        offered = app.status is AppStatus.ACTIVE and dialog in (
            "deactivate", "upgrade" if app.edition is Edition.TRIAL else "change")
        if dialog is not None and not offered:
            dialog, status, dialog_context = None, 409, {}
        return self.page(request, "app.html", status, app=app, tab="basic",
                         # The month's one change comes back on the 1st of the next month, the day
                         # the service issues this month's bill: both are the service's month.
                         reopens=this_month.issued_on, dialog=dialog, flash=_flash(request),
                         hints=forms.HINTS, zone=_zone(changes), **dialog_context)

    async def upgrade_dialog(self, request: Request) -> Response:
        return await self.app_page(request, "upgrade", form_values={})

    async def change_dialog(self, request: Request) -> Response:
        return await self.app_page(request, "change", form_values={})

    async def deactivate_dialog(self, request: Request) -> Response:
        return await self.app_page(request, "deactivate")

    async def upgrade_preview(self, request: Request) -> Response:
        return await self._preview(request, "upgrade")

    async def change_preview(self, request: Request) -> Response:
        return await self._preview(request, "change")

    async def _preview(self, request: Request, action: str) -> Response:
        form = await self.form(request)
        app_id = request.path_params["app_id"]
        client = self.client(request)
        values = {key: str(value) for key, value in form.items() if key != CSRF_FIELD}
        try:
            if action == "upgrade":
                change = forms.upgrade(form)
                assert change.edition is not None
                request_id = uuid.uuid4().hex
                preview = await client.admin.preview_upgrade(
                    app_id, change.edition, av_room_unlimited=change.av_room_unlimited,
                    user_group_limit=change.user_group_limit, group_member_limit=change.group_member_limit,
                    request_id=request_id)
            else:
                change = forms.change(form, await client.admin.get_app(app_id))
                request_id = uuid.uuid4().hex
                preview = await client.admin.preview_change_plan(
                    app_id, edition=change.edition, av_room_unlimited=change.av_room_unlimited,
                    user_group_limit=change.user_group_limit, group_member_limit=change.group_member_limit,
                    request_id=request_id)
        except FormError as error:
            return await self.app_page(request, action, 400, form_values=values,
                                       refusal=self._form_refusal(request, error))
        except (InvalidArgument, PlanRuleViolation) as error:
            return await self.app_page(request, action, 409 if isinstance(error, PlanRuleViolation) else 400,
                                       form_values=values, refusal=self.refusal(request, error))
        # The confirm form carries the same request and request_id: confirming twice changes once.
        return await self.app_page(request, action, preview=preview, hidden=change.hidden_fields(),
                                   request_id=request_id)

    def _form_refusal(self, request: Request, error: FormError) -> Refusal:
        say = self.say(request)
        return Refusal("invalid", say(error.key, **{name: say(str(value)) for name, value in error.values.items()}))

    async def upgrade_confirm(self, request: Request) -> Response:
        return await self._confirm(request, "upgrade")

    async def change_confirm(self, request: Request) -> Response:
        return await self._confirm(request, "change")

    async def _confirm(self, request: Request, action: str) -> Response:
        form = await self.form(request)
        app_id = request.path_params["app_id"]
        admin = self.client(request).admin
        request_id = str(form.get("request_id", "")) or None
        try:
            change = forms.confirmed(form)
            if action == "upgrade":
                if change.edition is None:
                    raise FormError("choose_edition")
                await admin.upgrade(app_id, change.edition, av_room_unlimited=change.av_room_unlimited,
                                    user_group_limit=change.user_group_limit,
                                    group_member_limit=change.group_member_limit, request_id=request_id)
            else:
                await admin.change_plan(app_id, edition=change.edition, av_room_unlimited=change.av_room_unlimited,
                                        user_group_limit=change.user_group_limit,
                                        group_member_limit=change.group_member_limit, request_id=request_id)
        except FormError as error:
            return await self.app_page(request, action, 400, form_values={},
                                       refusal=self._form_refusal(request, error))
        except (InvalidArgument, PlanRuleViolation) as error:
            return await self.app_page(request, action, 409, form_values=_form_values(change),
                                       refusal=self.refusal(request, error))
        return RedirectResponse(f"/apps/{app_id}?done={'upgraded' if action == 'upgrade' else 'changed'}",
                                status_code=303)

    async def deactivate(self, request: Request) -> Response:
        form = await self.form(request)
        app_id = request.path_params["app_id"]
        if str(form.get("typed_app_id", "")).strip() != str(app_id):
            return await self.app_page(request, "deactivate", 400, typed_wrong=True)
        try:
            await self.client(request).admin.deactivate(app_id, request_id=str(form.get("request_id", "")) or None)
        except (InvalidArgument, PlanRuleViolation) as error:
            return await self.app_page(request, "deactivate", 409, refusal=self.refusal(request, error))
        return RedirectResponse(f"/apps/{app_id}?done=deactivated", status_code=303)

    # Usage

    async def usage(self, request: Request) -> Response:
        app_id = request.path_params["app_id"]
        client = self.client(request)
        user = request.query_params.get("user") or None
        group = request.query_params.get("group") or None
        app = await client.admin.get_app(app_id)  # an unknown app is the not-found page
        lookup_error: Refusal | None = None
        status = 200
        try:
            usage = await client.check.usage(app_id, user, group)
        except (InvalidArgument, NotFound) as error:
            # The app exists (asked above): NOT_FOUND here is the group the operator typed.
            status = 404 if isinstance(error, NotFound) else 400
            lookup_error = Refusal("invalid", self.say(request)("group_not_found", group=group)) \
                if isinstance(error, NotFound) else self.refusal(request, error)
            usage = await client.check.usage(app_id)
            user = group = None
        return self.page(request, "usage.html", status, app=app, tab="usage", usage=usage,
                         user=user, group=group, lookup_error=lookup_error,
                         user_query=request.query_params.get("user", ""),
                         group_query=request.query_params.get("group", ""))

    # History and bills

    async def history(self, request: Request) -> Response:
        app_id = request.path_params["app_id"]
        client = self.client(request)
        app, changes, current = await asyncio.gather(client.admin.get_app(app_id),
                                                     client.admin.list_plan_changes(app_id),
                                                     current_bill(client, app_id))
        asked = request.query_params.get("month", "")
        say = self.say(request)
        month_error = None
        bill = current
        if asked and asked != current.month:
            try:
                if not _MONTH.fullmatch(asked):
                    raise InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, f"month: must be YYYY-MM, got {asked}")
                bill = await client.admin.get_bill(app_id, asked)
            except InvalidArgument:
                # What was typed is shown back (escaped, as every value is).
                month_error = say("month.invalid", month=asked)
            except PlanRuleViolation as error:
                month_error = self.refusal(request, error).message
        # Up to 12 months, none before the one the app was created in (they bill nothing).
        first = current.created_on[:7] if current.created_on else ""
        months = [month for month in _last_months(bill.month, 12) if month >= first]
        bills = await asyncio.gather(*(client.admin.get_bill(app_id, month) for month in months))
        bars = chart.bars([(each.month, each.total) for each in bills], bill.month)
        # Newest first; an operation's lines keep their order (the item asked for, then what followed).
        newest_first = sorted(changes, key=lambda change: change.at, reverse=True)
        return self.page(request, "history.html", 400 if month_error else 200, app=app, tab="history",
                         changes=newest_first, bill=bill, bars=bars, chart_width=chart.WIDTH,
                         chart_height=chart.HEIGHT, current_month=current.month, month_error=month_error,
                         asked=asked, zone=_zone(changes))

    # Language and sign-in

    async def switch_language(self, request: Request) -> Response:
        language = request.path_params["language"]
        response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        if language in words.LANGUAGES:
            response.set_cookie("lang", language, max_age=365 * 86400, httponly=True, samesite="strict",
                                secure=self.settings.https)
        return response

    async def sign_in_page(self, request: Request) -> Response:
        return self.page(request, "signin.html", refused=False, next=_safe_next(request.query_params.get("next")))

    async def sign_in(self, request: Request) -> Response:
        form = await self.form(request)
        token = str(form.get("token", "")).strip()
        next_path = _safe_next(str(form.get("next", "")))
        if not token or not await self._admin_token(token):
            return self.page(request, "signin.html", 401, refused=True, next=next_path)
        response = RedirectResponse(next_path, status_code=303)
        _set_session(response, self.sign_ins.sign_in(token), self.settings.https)
        return response

    async def _admin_token(self, token: str) -> bool:
        """Whether the service takes `token` as an admin token: a read only admins may make."""
        async with AsyncClient(self.settings.target, admin_timeout=self.settings.timeout, token=token,
                               credentials=self.settings.credentials) as probe:
            try:
                await probe.admin.list_apps(1)
            except (Unauthenticated, PermissionDenied):
                return False
        return True

    async def sign_out(self, request: Request) -> Response:
        await self.form(request)
        token = self.sign_ins.token(request.state.session_id)
        self.sign_ins.sign_out(request.state.session_id)
        if token not in self.sign_ins.tokens_in_use() and token in self._clients:
            # The operator's last session ended: the token leaves this process's memory with its channel.
            await self._clients.pop(token).close()
        response = RedirectResponse("/signin", status_code=303)
        _set_session(response, self.session_ids.issue(), self.settings.https)
        return response

    # Failures

    async def failure(self, request: Request, error: Exception) -> Response:
        """A call the service did not answer: a banner on a page of its own, never a stack trace."""
        if isinstance(error, CsrfRefused):
            return self.page(request, "error.html", 403, message_key="csrf")
        if isinstance(error, OriginRefused):
            return self.page(request, "error.html", 403, message_key="origin")
        if isinstance(error, Unavailable):
            return self.page(request, "error.html", 503, message_key="unreachable")
        if isinstance(error, NotFound):
            return self.page(request, "error.html", 404, message_key="not_found")
        if isinstance(error, Unauthenticated | PermissionDenied):
            if self.settings.sign_in:
                self.sign_ins.sign_out(request.state.session_id)
                return RedirectResponse("/signin", status_code=303)
            return self.page(request, "error.html", 502, message_key="server_refused_token",
                             message=_message(error))
        return self.page(request, "error.html", 400, message_key="error.text", message=_message(error))

    async def crash(self, request: Request, error: Exception) -> Response:
        log.exception("console page failed: %s %s", request.method, request.url.path)
        return PlainTextResponse("The console failed to render this page; nothing changed. See the console's log.",
                                 status_code=500, headers=_SECURITY_HEADERS)


class CsrfRefused(Exception):
    """A form post without this browser's CSRF token."""


class OriginRefused(Exception):
    """A post whose Origin is not this console's: another site's page, maybe under a rebound DNS name."""


async def current_bill(client: AsyncClient, app_id: int) -> Bill:
    """This month's bill, by the service's calendar (its time zone, not this machine's).

    The latest month the service bills is its current month: ask for the month
    it is now at the far east of the date line, and step back once if that is
    still in the service's future.
    """
    guess = datetime.now(UTC) + timedelta(hours=14)
    try:
        return await client.admin.get_bill(app_id, f"{guess.year:04d}-{guess.month:02d}")
    except PlanRuleViolation as error:
        if not any(violation.type == "MONTH_IN_FUTURE" for violation in error.violations):
            raise
    return await client.admin.get_bill(app_id, _last_months(f"{guess.year:04d}-{guess.month:02d}", 2)[0])


def _last_months(month: str, count: int) -> list[str]:
    year, number = int(month[:4]), int(month[5:7])
    index = year * 12 + number - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def _zone(changes: list[PlanChange]) -> str:
    """The service's time zone, as the history's times carry it (every app has its CreateApp change)."""
    return zone_name(changes[0].at) if changes else "UTC"


def _form_values(change: PlanChangeForm) -> dict[str, str]:
    return dict(change.hidden_fields())


def _flash(request: Request) -> str | None:
    done = request.query_params.get("done")
    return f"done.{done}" if done in _DONE else None


def _message(error: Exception) -> str:
    return error.message if isinstance(error, ImlimitsError) else ""


def _here(request: Request) -> str:
    query = f"?{request.url.query}" if request.url.query else ""
    return request.url.path + query


def _safe_next(path: str | None) -> str:
    """Only a path of this console: never another site (an open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/apps"
    return path


def _set_session(response: Response, session_id: str, https: bool) -> None:
    response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict", secure=https, path="/")


_PUBLIC = ("/signin", "/static/", "/lang/")


class _Sessions(BaseHTTPMiddleware):
    """A session id this console issued for every browser; a POST only from the console's own pages;
    sign-in required where configured; security headers on every answer."""

    def __init__(self, app: Any, console: Console) -> None:
        super().__init__(app)
        self.console = console

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        session_id = request.cookies.get(SESSION_COOKIE)
        # A cookie this console did not issue is never adopted: its author would know the session's CSRF token.
        fresh = not self.console.session_ids.issued(session_id)
        request.state.session_id = self.console.session_ids.issue() if fresh else session_id
        settings = self.console.settings
        response: Response
        if request.method == "POST" and not same_origin(request.headers.get("origin"), request.headers.get("host"),
                                                        settings.configured_hosts):
            response = await self.console.failure(request, OriginRefused())
        elif (settings.sign_in and not request.url.path.startswith(_PUBLIC)
                and self.console.sign_ins.token(request.state.session_id) is None):
            target = quote(_here(request), safe="/?=&")
            response = RedirectResponse(f"/signin?next={target}", status_code=303)
        else:
            response = await call_next(request)
        if fresh and SESSION_COOKIE not in response.headers.get("set-cookie", ""):
            _set_session(response, request.state.session_id, self.console.settings.https)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def create_app(settings: ConsoleSettings) -> Starlette:
    console = Console(settings)
    app_path = "/apps/{app_id:int}"
    get, post = ["GET"], ["POST"]
    routes = [
        Route("/", console.home, methods=get),
        Route("/apps", console.apps, methods=get),
        Route("/apps", console.create_app, methods=post),
        Route(app_path, console.app_page, methods=get),
        Route(f"{app_path}/upgrade", console.upgrade_dialog, methods=get),
        Route(f"{app_path}/upgrade/preview", console.upgrade_preview, methods=post),
        Route(f"{app_path}/upgrade", console.upgrade_confirm, methods=post),
        Route(f"{app_path}/change", console.change_dialog, methods=get),
        Route(f"{app_path}/change/preview", console.change_preview, methods=post),
        Route(f"{app_path}/change", console.change_confirm, methods=post),
        Route(f"{app_path}/deactivate", console.deactivate_dialog, methods=get),
        Route(f"{app_path}/deactivate", console.deactivate, methods=post),
        Route(f"{app_path}/usage", console.usage, methods=get),
        Route(f"{app_path}/history", console.history, methods=get),
        Route("/lang/{language}", console.switch_language, methods=get),
        Route("/signin", console.sign_in_page, methods=get),
        Route("/signin", console.sign_in, methods=post),
        Route("/signout", console.sign_out, methods=post),
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        yield
        await console.close()

    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ImlimitsError: console.failure, CsrfRefused: console.failure, Exception: console.crash,
    }
    # Host first: a name that is not the console's (a rebound DNS name) is answered 400 before anything else.
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts), www_redirect=False),
                  Middleware(_Sessions, console=console)]
    application = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan)
    application.state.console = console
    return application
