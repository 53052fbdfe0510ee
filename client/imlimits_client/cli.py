"""`imlimits`: the admin and operator command line.

Global options (--target, --json, --timeout, the credentials) may come before or after the
command, as with kubectl or docker. Exit statuses are listed in EXIT_STATUSES.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc

from imlimits_client import display, onboarding_cli
from imlimits_client.errors import (
    ImlimitsError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PlanRuleViolation,
    Unauthenticated,
    Unavailable,
)
from imlimits_client.sync import Client
from imlimits_client.transport import PlaintextTokenRefused, system_credentials
from imlimits_client.types import App, CheckResult, Edition, GroupType, Released

DEFAULT_TARGET = "localhost:50051"
DEFAULT_TIMEOUT = 10.0
EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STATUSES = """\
exit status:
  0    done; a check admitted; admin verify found no drift (or repaired it)
  1    refused: a check's IM code (printed), a plan rule (the monthly rule, a
       deactivated app, the wrong command for the edition); an app or group
       not found; an app that already exists; drift found by admin verify;
       a missing or refused token; the server unreachable or too slow
  2    usage error: a bad option or argument, input the service called
       malformed, a deactivation not confirmed
  130  interrupted (Ctrl-C)
with --json, every outcome (errors included) is one JSON object on stdout:
errors as {"status", "message", "violations"}, a check with its IM code
as "code" (name) and "im_code" (number)."""
AT_FORMAT = "ISO 8601 with a time zone, e.g. 2026-11-01T09:30:00+08:00"
APP_ID_MAX = 2**64 - 1  # SDKAppID is a uint64 on the wire
COUNT_MAX = 2**32 - 1   # limits and max_members are uint32 on the wire
MAX_HOLD_SECONDS = 3600

_EDITIONS = {"trial": Edition.TRIAL, "pro": Edition.PRO, "ultimate": Edition.ULTIMATE}
# The IM platform's type names, lower-cased: one spelling, as in the service's messages.
_GROUP_TYPES = {"work": GroupType.WORK, "public": GroupType.PUBLIC, "meeting": GroupType.MEETING,
                "avchatroom": GroupType.AVCHATROOM, "community": GroupType.COMMUNITY}


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """Bad input is one line, naming where to read more, rather than the whole usage text."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# Argument types: bad input is a one-line usage error (exit 2) before anything is sent.

def _text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # argv bytes that are not UTF-8 arrive as lone surrogates
        raise argparse.ArgumentTypeError(f"not valid UTF-8: {text!r}") from None
    return text


def _whole_number(text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]+", text):
        raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {_text(text)!r}")
    value = int(text)
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
    return value


def _app_id(text: str) -> int:
    return _whole_number(text, 1, APP_ID_MAX)


def _count(text: str) -> int:
    return _whole_number(text, 0, COUNT_MAX)


def _seconds(text: str) -> float:
    # float() would also read "inf", "nan" and non-ASCII digits such as "٢".
    if not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", _text(text)) or float(text) == 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, in ASCII digits such as 2.5, got {text!r}")
    return float(text)


def _hold_seconds(text: str) -> int:
    return _whole_number(text, 1, MAX_HOLD_SECONDS)


def _month(text: str) -> str:
    if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", _text(text)):
        raise argparse.ArgumentTypeError(f"give a month as YYYY-MM, e.g. 2026-11, got {text!r}")
    return text


def _at(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(_text(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}; use {AT_FORMAT}") from None
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give a time zone: {AT_FORMAT}")
    return at


def _global_options(top: bool) -> argparse.ArgumentParser:
    """The options every command takes, declared once.

    The top-level parser holds the defaults; each command's copy leaves an option unset unless
    it is given there, so an option may come before or after the command.
    """
    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    options = argparse.ArgumentParser(add_help=False)
    group = options.add_argument_group("global options (before or after the command)")
    group.add_argument("--target", type=_text, metavar="HOST:PORT",
                       default=default(os.environ.get("IMLIMITS_TARGET", DEFAULT_TARGET)),
                       help=f"the imlimits server (default: $IMLIMITS_TARGET, else {DEFAULT_TARGET})")
    group.add_argument("--json", action="store_true", default=default(False),
                       help="print one JSON object on stdout instead of a table, errors included (default: off)")
    group.add_argument("--timeout", type=_seconds, metavar="SECONDS", default=default(DEFAULT_TIMEOUT),
                       help=f"give up on the server after this long, more than 0 (default: {DEFAULT_TIMEOUT:g})")
    group.add_argument("--token-file", type=Path, metavar="FILE", default=default(None),
                       help="file holding the bearer token (default: $IMLIMITS_TOKEN, else no token)")
    group.add_argument("--tls-ca", type=Path, metavar="FILE", default=default(None),
                       help="PEM CA of the server's certificate: connect with TLS (default: plaintext)")
    group.add_argument("--tls-cert", type=Path, metavar="FILE", default=default(None),
                       help="PEM client certificate, for mutual TLS; needs --tls-ca (default: none)")
    group.add_argument("--tls-key", type=Path, metavar="FILE", default=default(None),
                       help="PEM client key, for mutual TLS; needs --tls-ca (default: none)")
    group.add_argument("--tls", action="store_true", default=default(False),
                       help="connect with TLS verified by the system's CAs (default: plaintext)")
    group.add_argument("--insecure", action="store_true", default=default(False),
                       help="allow sending the token without TLS to a target beyond this host (default: refused)")
    return options


def _version() -> str:
    try:
        return metadata.version("imlimits")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _parser() -> argparse.ArgumentParser:
    common = _global_options(top=False)

    app_id = argparse.ArgumentParser(add_help=False)
    app_id.add_argument("app", type=_app_id, metavar="APP",
                        help=f"the app's SDKAppID, a whole number from 1 to {APP_ID_MAX}")

    plan = argparse.ArgumentParser(add_help=False)
    plan.add_argument("--av-unlimited", action=argparse.BooleanOptionalAction, default=None,
                      help="turn the add-on for AVChatRooms without limit on or off, PRO only (default: unchanged)")
    plan.add_argument("--user-groups", type=_count, metavar="N",
                      help="user_group_limit: groups one user may be in, from the edition's default to 5000 "
                           "(default: unchanged)")
    plan.add_argument("--group-members", type=_count, metavar="N",
                      help="group_member_limit: members of one Work, Public or Meeting group, from the edition's "
                           "default to 6000 (default: unchanged)")
    plan.add_argument("--dry-run", action="store_true", help="validate and show the result; change nothing "
                                                             "(default: off)")
    plan.add_argument("--request-id", type=_text, metavar="ID",
                      help="makes a retry safe: the same id returns the first answer (default: a new id)")
    at_help = f"when it happened, {AT_FORMAT}; the server must run with --trust-client-time (default: now)"
    plan.add_argument("--at", type=_at, metavar="TIME", help=at_help)

    parser = _Parser(
        prog="imlimits", parents=[_global_options(top=True)], formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Administer and try imlimits: apps and plans, usage, bills and checks.\n"
                    "`imlimits COMMAND ACTION --help` describes each command.",
        epilog=EXIT_STATUSES)
    parser.add_argument("--version", action="version", version=f"imlimits {_version()}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(within: Any, name: str, summary: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
        return within.add_parser(name, parents=list(parents), help=summary, description=summary,  # type: ignore
                                 epilog=EXIT_STATUSES, formatter_class=argparse.RawDescriptionHelpFormatter)

    apps = command(commands, "app", "apps and their plans: create, show, upgrade, change (变配), "
                                    "deactivate (停用), history")
    app_commands = apps.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = command(app_commands, "create", "register an app on TRIAL", common, app_id)
    create.add_argument("--request-id", type=_text, metavar="ID",
                        help="makes a retry safe: the same id returns the first answer (default: a new id)")
    create.add_argument("--at", type=_at, metavar="TIME", help=at_help)
    command(app_commands, "show", "the plan, the limits enforced now and what may still change this month",
            common, app_id)
    upgrade = command(app_commands, "upgrade", "leave TRIAL for PRO or ULTIMATE, with add-ons",
                      common, app_id, plan)
    upgrade.add_argument("--edition", choices=["pro", "ultimate"], required=True,
                         help="the edition to upgrade to (required)")
    change = command(app_commands, "change", "变配: change the edition or add-ons of a PRO or ULTIMATE app; "
                                             "each once a calendar month", common, app_id, plan)
    change.add_argument("--edition", choices=sorted(_EDITIONS), help="the new edition (default: unchanged)")
    deactivate = command(app_commands, "deactivate", "停用: at once and for good; checks then answer 60016",
                         common, app_id)
    deactivate.add_argument("--yes", action="store_true",
                            help="do not ask to type the app id (default: ask; no answer is exit 2)")
    deactivate.add_argument("--request-id", type=_text, metavar="ID",
                            help="makes a retry safe: the same id returns the first answer (default: a new id)")
    deactivate.add_argument("--at", type=_at, metavar="TIME", help=at_help)
    command(app_commands, "history", "every plan change, oldest first, implicit adjustments marked",
            common, app_id)

    bill = command(commands, "bill", "a month's bill: the four items, charged or not, and why", common, app_id)
    bill.add_argument("month", type=_month, metavar="YYYY-MM",
                      help="the calendar month in the server's time zone; the current month gives the bill so far")

    usage = command(commands, "usage", "usage against the limits: AVChatRooms and the other groups apart",
                    common, app_id)
    usage.add_argument("--user", type=_text, metavar="USER", help="also the groups of this user (default: none)")
    usage.add_argument("--group", type=_text, metavar="GROUP", help="also the members of this group (default: none)")

    admin = command(commands, "admin", "operator tools")
    admin_commands = admin.add_subparsers(dest="action", required=True, metavar="ACTION")
    verify = command(admin_commands, "verify", "recount usage from the membership sets and report drift (exit 1)",
                     common, app_id)
    verify.add_argument("--repair", action="store_true",
                        help="set each drifting count to its recount (default: report only)")

    checks = command(commands, "check", "run a limit check as an IM backend would; a refusal prints its IM code")
    check_commands = checks.add_subparsers(dest="action", required=True, metavar="ACTION")
    dry_run = "answer as the real check would, record nothing (default: off)"
    owner = "the owner's user id; a member from creation except in an AVChatRoom (default: no owner)"
    users = "user ids, 1 to 32 bytes each, at most 500"
    hold = argparse.ArgumentParser(add_help=False)
    hold.add_argument("--hold", type=_hold_seconds, metavar="SECONDS", default=0,
                      help=f"hold what is admitted for 1 to {MAX_HOLD_SECONDS} seconds, until `imlimits hold confirm` "
                           "(default: recorded for good at once)")
    create_group = command(check_commands, "create-group", "create a group (CreateGroup)", common, app_id, hold)
    create_group.add_argument("group", type=_text, metavar="GROUP", help="the group id, 1 to 48 bytes")
    create_group.add_argument("--type", choices=list(_GROUP_TYPES), default="work",
                              help="the group type (default: %(default)s)")
    create_group.add_argument("--owner", type=_text, metavar="USER", default="", help=owner)
    create_group.add_argument("--member", type=_text, metavar="USER", action="append", default=[],
                              help="an initial member, repeatable (default: none)")
    create_group.add_argument("--max-members", type=_count, metavar="N", default=0,
                              help="the group's own member cap; 0 follows the plan (default: 0)")
    create_group.add_argument("--dry-run", action="store_true", help=dry_run)
    room = command(check_commands, "room", "open an AVChatRoom (CreateRoom)", common, app_id, hold)
    room.add_argument("room", type=_text, metavar="ROOM", help="the room id, 1 to 48 bytes")
    room.add_argument("--owner", type=_text, metavar="USER", default="",
                      help="the owner's user id; joins like everyone else (default: no owner)")
    room.add_argument("--dry-run", action="store_true", help=dry_run)
    join = command(check_commands, "join", "add members to a group (JoinGroup)", common, app_id, hold)
    join.add_argument("group", type=_text, metavar="GROUP", help="the group id")
    join.add_argument("users", type=_text, nargs="+", metavar="USER", help=users)
    join.add_argument("--dry-run", action="store_true", help=dry_run)
    leave = command(check_commands, "leave", "remove members from a group (LeaveGroup)", common, app_id)
    leave.add_argument("group", type=_text, metavar="GROUP", help="the group id")
    leave.add_argument("users", type=_text, nargs="+", metavar="USER", help=users)
    destroy = command(check_commands, "destroy", "destroy a group and release its members (DestroyGroup)",
                      common, app_id)
    destroy.add_argument("group", type=_text, metavar="GROUP", help="the group id")

    holds = command(commands, "hold", "confirm or cancel what a check with --hold admitted (docs/holds.md)")
    hold_commands = holds.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, summary in (("confirm", "the act happened: count what the hold admitted for good (exit 1 if the "
                                      "hold had been cancelled or had expired: undo the act)"),
                          ("cancel", "the act failed: release at once what the hold admitted")):
        hold_command = command(hold_commands, name, summary, common, app_id)
        hold_command.add_argument("hold_id", type=_text, metavar="HOLD_ID", help="the hold id a held check printed")
    onboarding_cli.add_parsers(command, app_commands, admin_commands, common, app_id)
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
    app = client.admin.create_app(args.app, request_id=args.request_id, at=args.at)
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
    if args.edition is None and args.av_unlimited is None and args.user_groups is None \
            and args.group_members is None:
        raise UsageError("say what to change: --edition, --av-unlimited or --no-av-unlimited, "
                         "--user-groups or --group-members")
    edition = _EDITIONS[args.edition] if args.edition else None
    return _plan_outcome(args, client.admin.change_plan(args.app, edition=edition, **_plan_options(args)))


def _app_deactivate(args: argparse.Namespace, client: Client) -> Outcome:
    _confirm_deactivation(args)
    app = client.admin.deactivate(args.app, request_id=args.request_id, at=args.at)
    return Outcome(app, display.app(app))


def _app_history(args: argparse.Namespace, client: Client) -> Outcome:
    changes = display.spelled_history(client.admin.list_plan_changes(args.app))
    return Outcome(changes, display.history(changes))


def _bill(args: argparse.Namespace, client: Client) -> Outcome:
    bill = display.spelled_bill(client.admin.get_bill(args.app, args.month))
    return Outcome(bill, display.bill(args.app, bill))


def _usage(args: argparse.Namespace, client: Client) -> Outcome:
    usage = client.check.usage(args.app, args.user, args.group)
    return Outcome(display.usage_data(usage), display.usage(args.app, usage, args.user, args.group))


def _verify(args: argparse.Namespace, client: Client) -> Outcome:
    result = client.check.verify_usage(args.app, args.repair)
    # Drift found and left is a finding (exit 1); repaired drift is done.
    return Outcome(result, display.verification(args.app, result),
                   EXIT_REFUSED if result.drifts and not result.repaired else EXIT_OK)


def _checked(result: CheckResult, args: argparse.Namespace) -> Outcome:
    result = display.spelled_check(result)
    text = display.check(result)
    if result.hold_id:
        text += display.held_check(args.app, result.hold_id, args.hold)
    return Outcome(result, text, EXIT_OK if result.allowed else EXIT_REFUSED)


def _hold_confirm(args: argparse.Namespace, client: Client) -> Outcome:
    result = client.check.confirm_hold(args.app, args.hold_id)
    refused = int(result.code) != 0 or not result.confirmed
    return Outcome(result, display.hold(result), EXIT_REFUSED if refused else EXIT_OK)


def _released(result: Released) -> Outcome:
    result = display.spelled_released(result)
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
        args.app, args.group, _GROUP_TYPES[args.type], args.owner, args.member, args.max_members, args.dry_run,
        hold_seconds=args.hold), args),
    ("check", "room"): lambda args, client: _checked(client.check.create_room(
        args.app, args.room, args.owner, args.dry_run, hold_seconds=args.hold), args),
    ("check", "join"): lambda args, client: _checked(client.check.join_group(
        args.app, args.group, args.users, args.dry_run, hold_seconds=args.hold), args),
    ("hold", "confirm"): _hold_confirm,
    ("hold", "cancel"): lambda args, client: _released(client.check.cancel_hold(args.app, args.hold_id)),
    ("check", "leave"): lambda args, client: _released(client.check.leave_group(args.app, args.group, args.users)),
    ("check", "destroy"): lambda args, client: _released(client.check.destroy_group(args.app, args.group)),
}


def _onboarding(handler: Callable[[argparse.Namespace, Client], onboarding_cli.Answer],
                ) -> Callable[[argparse.Namespace, Client], Outcome]:
    def run(args: argparse.Namespace, client: Client) -> Outcome:
        try:
            return Outcome(*handler(args, client))
        except onboarding_cli.InputError as error:
            raise UsageError(str(error)) from None

    return run


_COMMANDS.update({key: _onboarding(handler) for key, handler in onboarding_cli.COMMANDS.items()})


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


def _failure(error: UsageError | ImlimitsError, args: argparse.Namespace) -> tuple[str, int]:
    """What to tell the user, in the command line's words, saying what to do; and the exit status."""
    if isinstance(error, UsageError):
        return str(error), EXIT_USAGE
    message = display.spell(error.message, getattr(args, "app", None))
    if isinstance(error, InvalidArgument):
        return f"invalid input: {message}", EXIT_USAGE
    if isinstance(error, Unavailable):
        return (f"cannot reach imlimits at {args.target} ({message}); is the server running? "
                "Point at it with --target or IMLIMITS_TARGET."), EXIT_REFUSED
    if isinstance(error, Unauthenticated):
        return f"{message}; give a token with IMLIMITS_TOKEN or --token-file", EXIT_REFUSED
    if isinstance(error, PlanRuleViolation):
        return f"refused: {message}", EXIT_REFUSED
    if isinstance(error, PermissionDenied | NotFound):
        return message, EXIT_REFUSED
    return f"{error.status.name.lower().replace('_', ' ')}: {message}", EXIT_REFUSED


def _error_data(error: UsageError | ImlimitsError, message: str) -> dict[str, Any]:
    if isinstance(error, UsageError):
        return {"status": "USAGE_ERROR", "message": message, "violations": []}
    violations = [{**display.plain(violation), "description": display.spell(violation.description)}
                  for violation in getattr(error, "violations", ())]
    return {"status": error.status.name, "message": message, "violations": violations}


def _run(args: argparse.Namespace) -> int:
    try:
        token, credentials = _connection(args)
        with Client(args.target, check_timeout=args.timeout, admin_timeout=args.timeout, on_unavailable="raise",
                    token=token, credentials=credentials, insecure=args.insecure) as client:
            outcome = _COMMANDS[(args.command, getattr(args, "action", None))](args, client)
    except PlaintextTokenRefused as error:
        print(f"imlimits: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (UsageError, ImlimitsError) as error:
        message, status = _failure(error, args)
        print(f"imlimits: {message}", file=sys.stderr)
        if args.json:
            print(json.dumps(_error_data(error, message), ensure_ascii=False, indent=2))
        return status
    print(json.dumps(display.plain(outcome.result), ensure_ascii=False, indent=2) if args.json else outcome.text)
    return outcome.status


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except UsageError as error:
        print(f"imlimits: {error}", file=sys.stderr)
        if "--json" in argv:  # the options were not understood, but the wish for JSON was plain
            print(json.dumps(_error_data(error, str(error)), ensure_ascii=False, indent=2))
        return EXIT_USAGE
    try:
        status = _run(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("\nimlimits: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader (e.g. `| head`) has gone: stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return status


if __name__ == "__main__":
    sys.exit(main())
