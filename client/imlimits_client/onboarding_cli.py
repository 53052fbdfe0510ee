"""`imlimits admin import`, `imlimits admin export` and `imlimits app list`: onboarding an existing platform.

Their arguments are declared with every other command's in cli._parser; the handlers are here.

Files are JSON Lines: one GroupRecord per line in the protobuf JSON mapping,
e.g. {"groupId": "g1", "type": "GROUP_TYPE_PUBLIC", "owner": "alice", "members": ["bob"]}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from google.protobuf import json_format
from tqdm import tqdm

from imlimits.v1 import limit_pb2
from imlimits_client import display
from imlimits_client.errors import ImlimitsError
from imlimits_client.sync import Client
from imlimits_client.types import App, GroupRecord, ImportResult

# Seconds between progress lines when stderr is not a terminal (a log, CI).
PLAIN_PROGRESS_SECONDS = float(os.environ.get("IMLIMITS_PROGRESS_SECONDS", "5"))
EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

# What a handler returns: the result for --json, the text for people, the exit status.
Answer = tuple[Any, str, int]


class InputError(Exception):
    """A line of the import file is not a GroupRecord; raised before anything from that line on is sent."""


def _app_list(args: argparse.Namespace, client: Client) -> Answer:
    apps: list[App] = []
    token = ""
    while True:
        page = client.admin.list_apps(page_size=1000, page_token=token)
        apps += page.apps
        token = page.next_page_token
        if not token:
            break
    rows = [(app.app_id, display.EDITION_NAMES[app.edition], app.status.name.lower(), app.limits.user_groups,
             app.limits.group_members, "unlimited" if app.limits.av_rooms is None else app.limits.av_rooms)
            for app in apps]
    text = display.table(("APP", "EDITION", "STATUS", "GROUPS/USER", "MEMBERS/GROUP", "AV ROOMS"), rows)
    return apps, text + f"\n{len(apps)} apps", EXIT_OK


class _Progress:
    """A bar on a terminal (bytes read give the ETA); otherwise a plain line every few seconds."""

    def __init__(self, total_bytes: int | None, stream: IO[str]) -> None:
        self._stream = stream
        self._started = self._last_line = time.monotonic()
        self.records = self.memberships = self.bytes = 0
        self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, desc="import", file=stream,
                         dynamic_ncols=True) if stream.isatty() else None
        self._total = total_bytes

    def rate(self) -> float:
        return self.memberships / max(time.monotonic() - self._started, 1e-9)

    def advance(self, line_bytes: int, members: int, record: bool = True) -> None:
        self.records += record
        self.memberships += members
        self.bytes += line_bytes
        if self._bar is not None:
            self._bar.update(line_bytes)
            if self.records % 200 == 0:
                self._bar.set_postfix_str(f"{self.records:,} records, {self.rate():,.0f} memberships/s")
        elif time.monotonic() - self._last_line >= PLAIN_PROGRESS_SECONDS:
            self._last_line = time.monotonic()
            self._stream.write(self._plain_line() + "\n")
            self._stream.flush()

    def _plain_line(self) -> str:
        share = f", {100 * self.bytes / self._total:.0f}% of the file" if self._total else ""
        return f"import: {self.records:,} records, {self.memberships:,} memberships, {self.rate():,.0f}/s{share}"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"{self.records:,} records, {self.rate():,.0f} memberships/s")
            self._bar.close()


_FIELDS = {"groupId": "group_id", "group_id": "group_id", "type": "type", "owner": "owner", "members": "members",
           "maxMembers": "max_members", "max_members": "max_members"}
_TYPE_NAMES = set(limit_pb2.GroupType.keys())


def _plain(name: str, value: object) -> bool:
    """Whether a field's JSON value is of the everyday kind the fast path reads as protobuf would."""
    if name in ("group_id", "owner"):
        return isinstance(value, str)
    if name == "members":
        return isinstance(value, list) and all(isinstance(member, str) for member in value)
    if name == "type":
        return value in _TYPE_NAMES
    return type(value) is int and 0 <= value < 2**32  # bool is no number here


def parse_record(text: bytes) -> limit_pb2.GroupRecord:
    """One line in the protobuf JSON mapping.

    json_format.Parse takes about 1.5 ms for a record of 100 members; lines of
    the everyday shape are read directly (about 20 times faster) and anything
    else goes through json_format, which gives the exact mapping and its errors.
    """
    data = json.loads(text)
    if isinstance(data, dict) and all(_FIELDS.get(key) and _plain(_FIELDS[key], value) for key, value in data.items()) \
            and len({_FIELDS[key] for key in data}) == len(data):
        return limit_pb2.GroupRecord(**{_FIELDS[key]: value for key, value in data.items()})
    return json_format.ParseDict(data, limit_pb2.GroupRecord())


class _Lines:
    """Records read from a JSON Lines file; remembers blank lines so a record's position names its line."""

    def __init__(self, source: IO[bytes], name: str, progress: _Progress) -> None:
        self._source = source
        self._name = name
        self._progress = progress
        self._blank_lines: list[int] = []

    def __iter__(self) -> Iterator[GroupRecord]:
        for number, raw in enumerate(self._source, start=1):
            text = raw.strip()
            if not text:
                self._blank_lines.append(number)
                self._progress.advance(len(raw), 0, record=False)
                continue
            try:
                record = GroupRecord.from_proto(parse_record(text))
            except (json_format.ParseError, UnicodeDecodeError, ValueError) as error:
                raise InputError(f"{self._name} line {number}: not a GroupRecord: {str(error).rstrip('.')}") from None
            self._progress.advance(len(raw), len(record.members))
            yield record

    def line_of(self, record_position: int) -> int:
        line = record_position
        for blank in self._blank_lines:
            if blank <= line:
                line += 1
        return line


def _admin_import(args: argparse.Namespace, client: Client) -> Answer:
    name = "standard input" if args.file == "-" else args.file
    with contextlib.ExitStack() as closing:
        try:
            source = sys.stdin.buffer if args.file == "-" else closing.enter_context(Path(args.file).open("rb"))
        except OSError as error:
            raise InputError(f"{args.file}: {error.strerror}") from None
        size = None if args.file == "-" or not Path(args.file).is_file() else Path(args.file).stat().st_size
        progress = _Progress(size, sys.stderr)
        closing.callback(progress.close)
        lines = _Lines(source, name, progress)
        started = time.monotonic()
        try:
            result = client.admin.import_groups(args.app, lines, replace=args.replace)
        except InputError as error:
            raise InputError(f"{error}; nothing from that line on was sent and the stream was cancelled, so "
                             "nothing was released. Fix the line and run the import again (a re-run is safe).") \
                from None
        except ImlimitsError as error:
            found = re.search(r"\brecord (\d+)\b", error.message)
            if found:
                error.message += f" ({name} line {lines.line_of(int(found.group(1)))})"
            raise
    seconds = time.monotonic() - started
    return result, _summary(result, progress, seconds), EXIT_OK


def _summary(result: ImportResult, progress: _Progress, seconds: float) -> str:
    rows = [("records read", f"{progress.records:,}"),
            ("groups created", f"{result.groups_created:,}"),
            ("groups updated", f"{result.groups_updated:,}"),
            ("memberships added", f"{result.memberships_added:,}"),
            ("memberships removed", f"{result.memberships_removed:,}"),
            ("seconds", f"{seconds:.1f}"),
            ("memberships read per second", f"{progress.memberships / max(seconds, 1e-9):,.0f}")]
    text = display.table(("IMPORT", ""), rows)
    if not result.over_limit_total:
        return text + "\nnothing exceeds the plan"
    over = display.table(("OVER THE PLAN", "SUBJECT", "LIMIT", "CURRENT"),
                         [(o.kind, o.subject or "-", o.limit, o.current) for o in result.over_limit])
    more = result.over_limit_total - len(result.over_limit)
    things = "1 thing exceeds" if result.over_limit_total == 1 else f"{result.over_limit_total:,} things exceed"
    return (text + f"\n\n{things} the plan (kept: an import grandfathers what "
            "exists) and refuse newcomers until they are below it:\n" + over
            + (f"\n... and {more:,} more" if more else ""))


def _admin_export(args: argparse.Namespace, client: Client) -> Answer:
    groups, memberships, started, previous = 0, 0, time.monotonic(), None
    with contextlib.ExitStack() as closing:
        target = closing.enter_context(Path(args.output).open("w", encoding="utf-8")) if args.output \
            else sys.stdout
        for record in client.admin.export_groups(args.app):
            target.write(json.dumps(json_format.MessageToDict(record.to_proto()), ensure_ascii=False,
                                    separators=(",", ":")) + "\n")
            # The records of a group split for size come one after another.
            groups += record.group_id != previous
            previous = record.group_id
            memberships += len(record.members)
    seconds = time.monotonic() - started
    summary = {"app_id": args.app, "groups": groups, "memberships": memberships, "seconds": round(seconds, 3)}
    text = f"exported {groups:,} groups, {memberships:,} memberships of app {args.app} in {seconds:.1f} s"
    if args.output:
        return summary, text + f" to {args.output}", EXIT_OK
    # Standard output holds the records, one JSON object a line and nothing else: the summary goes to stderr.
    print(json.dumps(summary) if args.json else text, file=sys.stderr)
    return None, "", EXIT_OK


COMMANDS: dict[tuple[str, str], Callable[[argparse.Namespace, Client], Answer]] = {
    ("app", "list"): _app_list,
    ("admin", "import"): _admin_import,
    ("admin", "export"): _admin_export,
}
