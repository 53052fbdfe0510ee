"""`imlimits` end to end: a subprocess against the real server; tables and JSON both checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from harness import ServerProcess
from imlimits_client import Client


def imlimits(server: ServerProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imlimits_client.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "IMLIMITS_TARGET": server.target})


def as_json(server: ServerProcess, *args: str) -> Any:
    done = imlimits(server, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def app(server: ServerProcess, app_id: int) -> str:
    assert imlimits(server, "app", "create", str(app_id)).returncode == 0
    return str(app_id)


def test_help_names_every_command(server: ServerProcess) -> None:
    """The help's command list is exactly the commands the parser accepts, and each one answers its own --help."""
    done = imlimits(server, "--help")
    assert done.returncode == 0
    listed = re.findall(r"^ {4}([a-z][a-z-]*) {2,}\S", done.stdout, flags=re.MULTILINE)
    unknown = imlimits(server, "no-such-command")
    assert unknown.returncode == 2
    choices = re.search(r"invalid choice: 'no-such-command' \(choose from (.*)\)", unknown.stderr)
    assert choices is not None, unknown.stderr
    accepted = re.findall(r"'([^']+)'", choices.group(1))
    assert sorted(listed) == sorted(accepted)
    assert {"app", "bill", "usage", "check"} <= set(listed)
    for command in listed:
        own_help = imlimits(server, command, "--help")
        assert own_help.returncode == 0 and own_help.stdout.startswith(f"usage: imlimits {command} "), own_help


def test_app_show_table_and_json(server: ServerProcess, app: str) -> None:
    table = imlimits(server, "app", "show", app).stdout.splitlines()
    assert table[0] == f"app {app}: TRIAL, active"
    assert table[1].split() == ["ITEM", "SETTING", "ENFORCED", "CHANGE"]
    assert table[3].split() == ["av_room_unlimited", "false", "10", "AVChatRooms", "available"]
    data = as_json(server, "app", "show", app)
    assert (data["edition"], data["status"], data["limits"]["av_rooms"]) == ("TRIAL", "ACTIVE", 10)


def test_upgrade_then_rooms_until_refused(server: ServerProcess, app: str) -> None:
    upgraded = imlimits(server, "app", "upgrade", app, "--edition", "pro", "--user-groups", "800")
    assert upgraded.returncode == 0 and "user_group_limit    800" in upgraded.stdout
    assert "used this month" in upgraded.stdout
    for i in range(50):
        assert imlimits(server, "check", "room", app, f"r{i}", "--owner", "alice").stdout.strip() == "admitted"
    refused = imlimits(server, "check", "room", app, "r50")
    assert refused.returncode == 1
    assert refused.stdout.startswith("refused 10036: av_rooms limit 50 reached")
    data = json.loads(imlimits(server, "check", "room", app, "r50", "--json").stdout)
    assert (data["code"], data["allowed"], data["limit"], data["current"]) == ("AV_ROOM_LIMIT", False, 50, 50)


def test_usage_table(server: ServerProcess, app: str) -> None:
    imlimits(server, "check", "create-group", app, "g", "--owner", "alice", "--member", "bob", "--member", "cat")
    lines = imlimits(server, "usage", app, "--user", "alice", "--group", "g").stdout.splitlines()
    assert lines[1].split() == ["WHAT", "USED", "LIMIT"]
    assert lines[3].split() == ["other", "groups", "1", "-"]
    assert lines[4].split() == ["groups", "of", "user", "alice", "1", "50"]
    assert lines[5].split()[:5] == ["members", "of", "group", "g", "3"]
    data = as_json(server, "usage", app, "--group", "g")
    assert (data["groups"], data["group_members"], data["user_groups"]) == (1, 3, None)


def test_history_and_bill(server: ServerProcess, app: str) -> None:
    imlimits(server, "app", "upgrade", app, "--edition", "ultimate")
    history = imlimits(server, "app", "history", app).stdout.splitlines()
    assert history[0].split()[:4] == ["AT", "(UTC)", "OPERATION", "ITEM"]
    assert "TRIAL -> ULTIMATE" in history[2]
    assert history[3].split()[-2] == "implicit"
    assert [row["item"] for row in as_json(server, "app", "history", app)] == \
        ["status", "edition", "user_group_limit", "group_member_limit"]
    month = as_json(server, "app", "history", app)[1]["at"][:7]
    bill = imlimits(server, "bill", app, month)
    assert bill.returncode == 0
    assert bill.stdout.splitlines()[-1] == "total 0.00 CNY"
    assert [line["item"] for line in as_json(server, "bill", app, month)["lines"]] == \
        ["edition", "av_room_unlimited", "user_group_limit", "group_member_limit"]


def test_check_join_refused_names_denied_users(server: ServerProcess, app: str) -> None:
    with Client(server.target, check_timeout=10) as client:
        for i in range(50):
            client.check.create_group(int(app), f"g{i}", owner="busy")
        client.check.create_group(int(app), "last", owner="other")
    assert imlimits(server, "check", "join", app, "last", "fresh", "--dry-run").returncode == 0
    done = imlimits(server, "check", "join", app, "last", "fresh", "busy")
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "refused 10037: user_group_limit (50) would be exceeded: busy is already in 50 groups", "denied users: busy"]
    assert as_json(server, "usage", app, "--group", "last")["group_members"] == 1
    done = imlimits(server, "check", "join", app, "nope", "x")
    assert (done.returncode, done.stdout.split(":")[0]) == (1, "refused 10010")


def test_plan_rule_refusal_exits_1_with_the_rule(server: ServerProcess, app: str) -> None:
    imlimits(server, "app", "upgrade", app, "--edition", "pro")
    done = imlimits(server, "app", "change", app, "--edition", "ultimate")
    assert done.returncode == 1
    assert "edition was already changed" in done.stderr and "may change again on" in done.stderr


def test_dry_run_says_so(server: ServerProcess, app: str) -> None:
    done = imlimits(server, "app", "upgrade", app, "--edition", "pro", "--av-unlimited", "--dry-run")
    assert done.stdout.startswith("dry run, nothing changed:")
    assert as_json(server, "app", "show", app)["edition"] == "TRIAL"


def test_deactivate_asks_unless_yes(server: ServerProcess, app: str) -> None:
    declined = imlimits(server, "app", "deactivate", app, stdin="no\n")
    assert declined.returncode == 2 and "not confirmed" in declined.stderr
    no_input = imlimits(server, "app", "deactivate", app)
    assert no_input.returncode == 2 and "--yes" in no_input.stderr
    confirmed = imlimits(server, "app", "deactivate", app, stdin=f"{app}\n")
    assert confirmed.returncode == 0 and "DEACTIVATED" in confirmed.stdout
    assert as_json(server, "app", "deactivate", app, "--yes")["status"] == "DEACTIVATED"
    assert imlimits(server, "check", "room", app, "r").stdout.startswith("refused 60016")


@pytest.mark.parametrize(("args", "message"), [
    (["app", "show", "not-a-number"], "must be a whole number"),
    (["app", "upgrade", "1", "--edition", "gold"], "invalid choice"),
    (["app", "change", "1", "--at", "2019-01-01"], "give a time zone"),
])
def test_usage_errors_exit_2(server: ServerProcess, args: list[str], message: str) -> None:
    done = imlimits(server, *args)
    assert done.returncode == 2 and message in done.stderr


def test_invalid_input_exits_2(server: ServerProcess, app: str) -> None:
    done = imlimits(server, "check", "join", app, "g", "x" * 40)
    assert done.returncode == 2 and "users[0]" in done.stderr


def test_unknown_app_and_unreachable_server(server: ServerProcess, app_id: int) -> None:
    done = imlimits(server, "app", "show", str(app_id))
    assert done.returncode == 1 and "not found" in done.stderr
    done = imlimits(server, "app", "show", str(app_id), "--target", "127.0.0.1:1", "--timeout", "1")
    assert done.returncode == 1 and "cannot reach imlimits at 127.0.0.1:1" in done.stderr


def test_admin_verify(server: ServerProcess, app: str) -> None:
    imlimits(server, "check", "create-group", app, "g", "--owner", "alice", "--member", "bob")
    done = imlimits(server, "admin", "verify", app)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [f"app {app}: 1 groups, 2 users with memberships",
                                        "no drift: every count matches the membership sets"]
    assert as_json(server, "admin", "verify", app, "--repair") == {"groups": 1, "users": 2, "drifts": [],
                                                                  "repaired": True, "pending_groups": 0,
                                                                  "pending_releases": 0,
                                                                  "held": {"holds": 0, "groups": 0, "av_rooms": 0,
                                                                           "memberships": 0}}


def test_a_held_check_then_hold_confirm_and_cancel(server: ServerProcess, app: str) -> None:
    assert imlimits(server, "check", "create-group", app, "g", "--owner", "alice").returncode == 0
    held = imlimits(server, "check", "join", app, "g", "bob", "--hold", "60")
    assert held.returncode == 0, held.stderr
    match = re.search(r"hold id (\S+)", held.stdout)
    assert held.stdout.startswith("admitted, held for 60 s: hold id ") and match
    assert f"imlimits hold confirm {app} {match[1]}" in held.stdout
    usage = imlimits(server, "usage", app, "--group", "g").stdout
    assert "held, not yet confirmed (included above): 1 holds, 0 groups, 1 memberships, 1 of them members of " \
           "group g" in usage
    verify = imlimits(server, "admin", "verify", app).stdout
    assert "1 holds" in verify and "--repair leaves holds as they are" in verify
    confirmed = imlimits(server, "hold", "confirm", app, match[1])
    assert confirmed.returncode == 0 and confirmed.stdout.startswith("confirmed")
    second = imlimits(server, "check", "join", app, "g", "carol", "--hold", "60", "--json")
    hold_id = json.loads(second.stdout)["hold_id"]
    cancelled = imlimits(server, "hold", "cancel", app, hold_id)
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, "released 1 memberships")
    late = imlimits(server, "hold", "confirm", app, hold_id)
    assert late.returncode == 1 and "cancelled or had expired" in late.stdout
    assert "held," not in imlimits(server, "usage", app).stdout


def test_hold_options_are_checked_before_anything_is_sent(server: ServerProcess, app: str) -> None:
    for value in ("0", "3601", "1.5", "٢"):
        done = imlimits(server, "check", "join", app, "g", "bob", "--hold", value)
        assert done.returncode == 2 and "--hold" in done.stderr, done.stderr
    forged = imlimits(server, "hold", "confirm", app, "h1.forged")
    assert forged.returncode == 2 and "hold_id" in forged.stderr
