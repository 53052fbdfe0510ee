"""`imlimits-synapse`: onboarding a homeserver already in use (`import`), and the id mapping (`id`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from imlimits_client import Client, GroupRecord, ImlimitsError
from imlimits_client.display import table
from imlimits_client.transport import is_local, system_credentials
from imlimits_synapse import importer
from imlimits_synapse.ids import group_key, user_key

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imlimits-synapse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "import", help="count a homeserver's rooms and joined local members in imlimits (safe to run again)",
        description="Reads every room created on this homeserver with its joined local members through "
                    "Synapse's admin API and imports them into imlimits with replace, so that counts are exact: "
                    "run it once before loading the module on a homeserver in use, and again whenever counts "
                    "may have drifted (a re-run changes only what drifted).")
    run.add_argument("--homeserver", required=True, help="Synapse's client URL, e.g. http://127.0.0.1:8008")
    run.add_argument("--admin-token-file", required=True, type=Path,
                     help="file holding the access token of a Synapse server admin")
    run.add_argument("--target", required=True, help="imlimits as HOST:PORT")
    run.add_argument("--app-id", required=True, type=int, help="the app this homeserver is (the module's app_id)")
    run.add_argument("--token-file", type=Path, help="file holding an imlimits admin token")
    show = commands.add_parser("id", help="print the imlimits id of Matrix user or room ids",
                               description="imlimits keeps a Matrix id as it is where it fits its bounds (users "
                                           "32 bytes, rooms 48) and a digest otherwise; this prints which.")
    show.add_argument("ids", nargs="+", metavar="ID", help="@user:server or !room:server")
    args = parser.parse_args(argv)
    if args.command == "id":
        for matrix_id in args.ids:
            print(f"{matrix_id}\t{group_key(matrix_id) if matrix_id.startswith('!') else user_key(matrix_id)}")
        return EXIT_OK
    try:
        return _import(args)
    except (importer.AdminApiError, ImlimitsError, OSError) as error:
        print(f"imlimits-synapse import: {error}", file=sys.stderr)
        return EXIT_FAILED


def _import(args: argparse.Namespace) -> int:
    admin_token = _read_token(args.admin_token_file)
    token = _read_token(args.token_file) if args.token_file else None
    api = importer.AdminApi(args.homeserver, admin_token)
    names: dict[str, str] = {}
    counted = {"rooms": 0, "members": 0}

    def records() -> Iterator[GroupRecord]:
        for room in importer.rooms(api):
            counted["rooms"] += 1
            counted["members"] += len(room.members)
            names[group_key(room.room_id)] = room.room_id
            names.update((user_key(member), member) for member in room.members)
            yield room.record()

    credentials = None if is_local(args.target) else system_credentials()
    started = time.monotonic()
    with Client(args.target, token=token, credentials=credentials) as client:
        result = client.admin.import_groups(args.app_id, records(), replace=True)
    rows = [("rooms read", f"{counted['rooms']:,}"), ("joined local members", f"{counted['members']:,}"),
            ("groups created", f"{result.groups_created:,}"), ("groups updated", f"{result.groups_updated:,}"),
            ("memberships added", f"{result.memberships_added:,}"),
            ("memberships removed", f"{result.memberships_removed:,}"),
            ("seconds", f"{time.monotonic() - started:.1f}")]
    print(table(("IMPORT", ""), rows))
    if result.over_limit_total:
        print(f"\n{result.over_limit_total:,} exceed the plan (kept: what exists is never undone) and refuse "
              "newcomers until below it:")
        print(table(("OVER THE PLAN", "ROOM OR USER", "LIMIT", "CURRENT"),
                    [(o.kind, names.get(o.subject, o.subject) or "-", o.limit, o.current) for o in result.over_limit]))
    return EXIT_OK


def _read_token(path: Path) -> str:
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise OSError(f"{path} is empty")
    return token


if __name__ == "__main__":
    sys.exit(main())
