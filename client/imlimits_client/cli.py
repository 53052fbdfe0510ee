"""`imlimits`: the admin and operator command line.

Exit status: 0 done or admitted; 1 refused (a check's IM code, a plan rule,
an unknown app) or the service unreachable; 2 a usage error or input the
service called malformed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc

from imlimits_client import display
from imlimits_client.errors import ImlimitsError, InvalidArgument, PermissionDenied, Unauthenticated, Unavailable
from imlimits_client.sync import Client
from imlimits_client.transport import PlaintextTokenRefused, system_credentials
from imlimits_client.types import App, CheckResult, Edition, GroupType, Released

DEFAULT_TARGET = "localhost:50051"
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

_EDITIONS = {"trial": Edition.TRIAL, "pro": Edition.PRO, "ultimate": Edition.ULTIMATE}
_GROUP_TYPES = {"work": GroupType.WORK, "public": GroupType.PUBLIC, "meeting": GroupType.MEETING,
                "av": GroupType.AVCHATROOM, "community": GroupType.COMMUNITY}


class UsageError(Exception):
    pass


def _at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone, e.g. {text}+08:00")
    return at


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--target", default=os.environ.get("IMLIMITS_TARGET", DEFAULT_TARGET),
                        help="imlimits server HOST:PORT (env IMLIMITS_TARGET; default %(default)s)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server")
    common.add_argument("--token-file", type=Path, help="file holding the bearer token (or set IMLIMITS_TOKEN)")
    common.add_argument("--tls-ca", type=Path, help="PEM CA to verify the server's certificate: connect with TLS")
    common.add_argument("--tls-cert", type=Path, help="PEM client certificate, for mutual TLS")
    common.add_argument("--tls-key", type=Path, help="PEM client key, for mutual TLS")
    common.add_argument("--tls", action="store_true", help="connect with TLS verified by the system's CAs")
    common.add_argument("--insecure", action="store_true",
                        help="allow sending the token without TLS to a target beyond this host")

    app_id = argparse.ArgumentParser(add_help=False)
    app_id.add_argument("app", type=int, metavar="APP", help="the SDKAppID")

    plan = argparse.ArgumentParser(add_help=False)
    plan.add_argument("--av-unlimited", action=argparse.BooleanOptionalAction, default=None,
                      help="AV chat rooms without limit (PRO only)")
    plan.add_argument("--user-groups", type=int, metavar="N", help="user_group_limit: groups one user may be in")
    plan.add_argument("--group-members", type=int, metavar="N", help="group_member_limit: members of one group")
    plan.add_argument("--dry-run", action="store_true", help="validate and show the result; change nothing")
    plan.add_argument("--request-id", help="makes a retry safe (one is generated when omitted)")
    plan.add_argument("--at", type=_at, help="when the change happened (server needs --trust-client-time)")

    parser = argparse.ArgumentParser(
        prog="imlimits", description="Administer and try imlimits: apps and plans, usage, bills and checks.",
        epilog="Exit status: 0 done or admitted, 1 refused or unreachable, 2 usage error.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    apps = commands.add_parser("app", help="create, show, upgrade, change (变配), deactivate (停用), history")
    app_commands = apps.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = app_commands.add_parser("create", parents=[common, app_id], help="register an app on TRIAL")
    create.add_argument("--request-id")
    app_commands.add_parser("show", parents=[common, app_id], help="plan, enforced limits, locked changes")
    upgrade = app_commands.add_parser("upgrade", parents=[common, app_id, plan], help="from TRIAL to PRO or ULTIMATE")
    upgrade.add_argument("--edition", choices=["pro", "ultimate"], required=True)
    change = app_commands.add_parser("change", parents=[common, app_id, plan],
                                     help="变配: change edition or add-ons of a PRO or ULTIMATE app")
    change.add_argument("--edition", choices=sorted(_EDITIONS))
    deactivate = app_commands.add_parser("deactivate", parents=[common, app_id],
                                         help="停用: immediate and irreversible")
    deactivate.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    deactivate.add_argument("--request-id")
    app_commands.add_parser("history", parents=[common, app_id], help="every plan change, oldest first")

    bill = commands.add_parser("bill", parents=[common, app_id], help="a month's bill")
    bill.add_argument("month", metavar="YYYY-MM")

    usage = commands.add_parser("usage", parents=[common, app_id], help="usage against the limits")
    usage.add_argument("--user", help="also the groups of this user")
    usage.add_argument("--group", help="also the members of this group")

    admin = commands.add_parser("admin", help="operator tools")
    admin_commands = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = admin_commands.add_parser("verify", parents=[common, app_id],
                                       help="recount usage from the membership sets and report drift")
    verify.add_argument("--repair", action="store_true", help="set each drifting count to its recount")

    checks = commands.add_parser("check", help="run a limit check as an IM backend would")
    check_commands = checks.add_subparsers(dest="action", required=True, metavar="ACTION")
    create_group = check_commands.add_parser("create-group", parents=[common, app_id], help="CreateGroup")
    create_group.add_argument("group")
    create_group.add_argument("--type", choices=list(_GROUP_TYPES), default="work")
    create_group.add_argument("--owner", default="")
    create_group.add_argument("--member", action="append", default=[], help="an initial member (repeatable)")
    create_group.add_argument("--max-members", type=int, default=0, help="the group's own cap; 0 follows the plan")
    create_group.add_argument("--dry-run", action="store_true")
    room = check_commands.add_parser("room", parents=[common, app_id], help="CreateRoom (an AVChatRoom)")
    room.add_argument("room")
    room.add_argument("--owner", default="")
    room.add_argument("--dry-run", action="store_true")
    join = check_commands.add_parser("join", parents=[common, app_id], help="JoinGroup")
    join.add_argument("group")
    join.add_argument("users", nargs="+", metavar="USER")
    join.add_argument("--dry-run", action="store_true")
    leave = check_commands.add_parser("leave", parents=[common, app_id], help="LeaveGroup")
    leave.add_argument("group")
    leave.add_argument("users", nargs="+", metavar="USER")
    destroy = check_commands.add_parser("destroy", parents=[common, app_id], help="DestroyGroup")
    destroy.add_argument("group")
    return parser


def _confirm_deactivation(args: argparse.Namespace) -> None:
    if args.yes:
        return
    prompt = (f"Deactivate (停用) app {args.app}? It takes effect at once and cannot be undone.\n"
              f"Type the app id to confirm: ")
    try:
        answer = input(prompt)
    except EOFError:
        raise UsageError("not confirmed: no input to read; pass --yes to deactivate without asking") from None
    if answer.strip() != str(args.app):
        raise UsageError("not confirmed: nothing changed")


@dataclass(frozen=True)
class Outcome:
    result: Any
    text: str
    status: int = EXIT_OK


def _app_create(args: argparse.Namespace, client: Client) -> Outcome:
    app = client.admin.create_app(args.app, request_id=args.request_id)
    return Outcome(app, display.app(app))


def _app_show(args: argparse.Namespace, client: Client) -> Outcome:
    app = client.admin.get_app(args.app)
    return Outcome(app, display.app(app))


def _plan_options(args: argparse.Namespace) -> dict[str, Any]:
    return dict(av_room_unlimited=args.av_unlimited, user_group_limit=args.user_groups,
                group_member_limit=args.group_members, request_id=args.request_id, at=args.at, dry_run=args.dry_run)


def _plan_outcome(args: argparse.Namespace, app: App) -> Outcome:
    return Outcome(app, ("dry run, nothing changed:\n" if args.dry_run else "") + display.app(app))


def _app_upgrade(args: argparse.Namespace, client: Client) -> Outcome:
    return _plan_outcome(args, client.admin.upgrade(args.app, _EDITIONS[args.edition], **_plan_options(args)))


def _app_change(args: argparse.Namespace, client: Client) -> Outcome:
    edition = _EDITIONS[args.edition] if args.edition else None
    return _plan_outcome(args, client.admin.change_plan(args.app, edition=edition, **_plan_options(args)))


def _app_deactivate(args: argparse.Namespace, client: Client) -> Outcome:
    _confirm_deactivation(args)
    app = client.admin.deactivate(args.app, request_id=args.request_id)
    return Outcome(app, display.app(app))


def _app_history(args: argparse.Namespace, client: Client) -> Outcome:
    changes = client.admin.list_plan_changes(args.app)
    return Outcome(changes, display.history(changes))


def _bill(args: argparse.Namespace, client: Client) -> Outcome:
    bill = client.admin.get_bill(args.app, args.month)
    return Outcome(bill, display.bill(args.app, bill))


def _usage(args: argparse.Namespace, client: Client) -> Outcome:
    usage = client.check.usage(args.app, args.user, args.group)
    return Outcome(usage, display.usage(args.app, usage, args.user, args.group))


def _verify(args: argparse.Namespace, client: Client) -> Outcome:
    result = client.check.verify_usage(args.app, args.repair)
    # Drift found and left is a finding (exit 1); repaired drift is done.
    return Outcome(result, display.verification(args.app, result),
                   EXIT_REFUSED if result.drifts and not result.repaired else EXIT_OK)


def _checked(result: CheckResult) -> Outcome:
    return Outcome(result, display.check(result), EXIT_OK if result.allowed else EXIT_REFUSED)


def _released(result: Released) -> Outcome:
    return Outcome(result, display.released(result), EXIT_OK if int(result.code) == 0 else EXIT_REFUSED)


_COMMANDS: dict[tuple[str, str | None], Callable[[argparse.Namespace, Client], Outcome]] = {
    ("app", "create"): _app_create,
    ("app", "show"): _app_show,
    ("app", "upgrade"): _app_upgrade,
    ("app", "change"): _app_change,
    ("app", "deactivate"): _app_deactivate,
    ("app", "history"): _app_history,
    ("bill", None): _bill,
    ("usage", None): _usage,
    ("admin", "verify"): _verify,
    ("check", "create-group"): lambda args, client: _checked(client.check.create_group(
        args.app, args.group, _GROUP_TYPES[args.type], args.owner, args.member, args.max_members, args.dry_run)),
    ("check", "room"): lambda args, client: _checked(client.check.create_room(
        args.app, args.room, args.owner, args.dry_run)),
    ("check", "join"): lambda args, client: _checked(client.check.join_group(
        args.app, args.group, args.users, args.dry_run)),
    ("check", "leave"): lambda args, client: _released(client.check.leave_group(args.app, args.group, args.users)),
    ("check", "destroy"): lambda args, client: _released(client.check.destroy_group(args.app, args.group)),
}


def _connection(args: argparse.Namespace) -> tuple[str | None, grpc.ChannelCredentials | None]:
    """The token (never a command-line value, which `ps` shows) and TLS credentials."""
    try:
        token = args.token_file.read_text().strip() if args.token_file else os.environ.get("IMLIMITS_TOKEN")
        if args.tls_ca is None and not args.tls:
            if args.tls_cert or args.tls_key:
                raise UsageError("--tls-cert and --tls-key need --tls or --tls-ca")
            return token, None
        if args.tls_ca is None and not (args.tls_cert or args.tls_key):
            return token, system_credentials()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=args.tls_ca.read_bytes() if args.tls_ca else None,
            private_key=args.tls_key.read_bytes() if args.tls_key else None,
            certificate_chain=args.tls_cert.read_bytes() if args.tls_cert else None)
    except OSError as error:
        raise UsageError(f"{error.filename}: {error.strerror}") from None
    return token, credentials


def _failure(error: UsageError | ImlimitsError, target: str) -> tuple[str, int]:
    """What to tell the user, saying what to do, and the exit status."""
    if isinstance(error, UsageError):
        return str(error), EXIT_USAGE
    if isinstance(error, InvalidArgument):
        return f"invalid input: {error.message}", EXIT_USAGE
    if isinstance(error, Unavailable):
        return (f"cannot reach imlimits at {target} ({error.message}); is the server running? "
                "Point at it with --target or IMLIMITS_TARGET."), EXIT_REFUSED
    if isinstance(error, Unauthenticated):
        return f"{error.message}; give a token with IMLIMITS_TOKEN or --token-file", EXIT_REFUSED
    if isinstance(error, PermissionDenied):
        return error.message, EXIT_REFUSED
    return f"{error.status.name.lower().replace('_', ' ')}: {error.message}", EXIT_REFUSED


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        token, credentials = _connection(args)
        with Client(args.target, check_timeout=args.timeout, admin_timeout=args.timeout, on_unavailable="raise",
                    token=token, credentials=credentials, insecure=args.insecure) as client:
            outcome = _COMMANDS[(args.command, getattr(args, "action", None))](args, client)
    except PlaintextTokenRefused as error:
        print(f"imlimits: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ImlimitsError) as error:
        message, status = _failure(error, args.target)
        print(f"imlimits: {message}", file=sys.stderr)
        return status
    print(json.dumps(display.plain(outcome.result), ensure_ascii=False, indent=2) if args.json else outcome.text)
    return outcome.status


if __name__ == "__main__":
    sys.exit(main())
