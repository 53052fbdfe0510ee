"""The `imlimits` command as a newcomer meets it: the real command against the real server.

Set-up goes through the client library (fast); what is judged is always the command's own output.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from wcwidth import wcswidth

from harness import ServerProcess
from imlimits_client import Client, Edition, GroupType
from imlimits_client import cli as cli_module
from imlimits_client.display import table

ROOT = Path(__file__).resolve().parents[2]
UNREACHABLE = "127.0.0.1:1"
# The installed console script where there is one (as a user runs it), else the module.
_SCRIPT = shutil.which("imlimits", path=str(Path(sys.executable).parent))
COMMAND = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "imlimits_client.cli"]


def imlimits(*args: str | bytes, target: str = UNREACHABLE, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*COMMAND, *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "IMLIMITS_TARGET": target})


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def client(server: ServerProcess) -> Any:
    with Client(server.target, check_timeout=10, admin_timeout=10) as client:
        yield client


def test_global_options_before_or_after_the_command(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    # The environment points nowhere, so only --target can have found the server.
    before = imlimits("--target", server.target, "--json", "app", "show", str(app_id))
    after = imlimits("app", "show", str(app_id), "--json", "--target", server.target)
    assert before.returncode == after.returncode == 0, before.stderr + after.stderr
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(before.stdout)["edition"] == "TRIAL"


def test_version() -> None:
    done = imlimits("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"imlimits {metadata.version('imlimits')}")


@pytest.mark.parametrize(("args", "names"), [
    (["check", "join", "1", b"\xff\xfe", "alice"], "not valid UTF-8"),
    (["check", "join", "1", "team", b"bob\xff"], "not valid UTF-8"),
    (["app", "show", "-5"], "must be a whole number from 1 to 18446744073709551615"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str | bytes], names: str) -> None:
    done = imlimits(*args)
    assert done.returncode == 2
    assert names in one_line_error(done)


@pytest.mark.parametrize(("args", "names"), [
    (["check", "join", "1", "team", "bob\udcff"], "not valid UTF-8"),  # how Python hands on such argv bytes
    (["app", "show", "99999999999999999999"], "must be from 1 to 18446744073709551615"),
    (["app", "change", "1", "--user-groups", "99999999999"], "must be from 0 to 4294967295"),
    (["--timeout", "0", "app", "show", "1"], "must be more than 0 seconds"),
    (["app", "show", "1", "--timeout", "-3"], "must be more than 0 seconds"),
    (["app", "show", "1", "--timeout", "nan"], "must be more than 0 seconds"),
    (["bill", "1", "2026-13"], "give a month as YYYY-MM"),
    (["app", "change", "1"], "say what to change: --edition"),
    (["app", "show"], "the following arguments are required: APP"),
])
def test_more_bad_input_in_process(args: list[str], names: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The same main() as the command, without a process each: nothing here reaches a server."""
    assert cli_module.main([*args, "--target", UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert names in err and len(err.strip().splitlines()) == 1, err


def test_bad_input_with_json_is_a_json_error_too() -> None:
    done = imlimits("app", "show", "-5", "--json")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["status"] == "USAGE_ERROR" and "must be a whole number" in data["message"]


def test_json_errors_carry_status_message_and_violations(server: ServerProcess, client: Client,
                                                         app_id: int) -> None:
    unknown = imlimits("app", "show", str(app_id), "--json", target=server.target)
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout) == {
        "status": "NOT_FOUND", "violations": [],
        "message": f"app {app_id} not found: create it with `imlimits app create {app_id}`"}
    assert one_line_error(unknown) == f"imlimits: app {app_id} not found: create it with `imlimits app create {app_id}`"

    client.admin.create_app(app_id)
    exists = imlimits("app", "create", str(app_id), "--json", target=server.target)
    assert (exists.returncode, json.loads(exists.stdout)["status"]) == (1, "ALREADY_EXISTS")

    client.admin.upgrade(app_id, Edition.PRO)
    refused = imlimits("app", "change", str(app_id), "--edition", "ultimate", "--json", target=server.target)
    assert refused.returncode == 1
    data = json.loads(refused.stdout)
    assert data["status"] == "FAILED_PRECONDITION" and data["message"].startswith("refused: edition was already")
    assert [(v["type"], v["subject"]) for v in data["violations"]] == [("MONTHLY_CHANGE_USED", "edition")]
    assert "EDITION_" not in refused.stdout

    malformed = imlimits("check", "join", str(app_id), "g", "x" * 40, "--json", target=server.target)
    assert (malformed.returncode, json.loads(malformed.stdout)["status"]) == (2, "INVALID_ARGUMENT")

    unreachable = imlimits("--json", "--timeout", "1", "app", "show", str(app_id))
    assert (unreachable.returncode, json.loads(unreachable.stdout)["status"]) == (1, "UNAVAILABLE")


def test_refused_check_json_names_and_numbers_the_im_code(server: ServerProcess, client: Client,
                                                          app_id: int) -> None:
    client.admin.create_app(app_id)
    for i in range(50):
        client.check.create_group(app_id, f"g{i}", owner="busy")
    client.check.create_group(app_id, "last", owner="other")
    done = imlimits("check", "join", str(app_id), "last", "busy", "--json", target=server.target)
    assert done.returncode == 1
    data = json.loads(done.stdout)
    assert (data["code"], data["im_code"], data["denied_users"]) == ("USER_GROUP_LIMIT", 10037, ["busy"])
    assert data["info"] == "user_group_limit (50) would be exceeded: busy is already in 50 groups"


def test_messages_speak_the_command_line(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.admin.upgrade(app_id, Edition.PRO)
    wrong = one_line_error(imlimits("app", "upgrade", str(app_id), "--edition", "ultimate", target=server.target))
    assert wrong == ("imlimits: refused: `app upgrade` is only from Trial and the app is on Pro: "
                     "use `imlimits app change`")
    client.admin.change_plan(app_id, edition=Edition.TRIAL)  # a revert: the app is on TRIAL again
    again = imlimits("app", "upgrade", str(app_id), "--edition", "pro", target=server.target)
    assert again.returncode == 1
    message = one_line_error(again)
    assert re.fullmatch(r"imlimits: refused: edition was already changed in \d{4}-\d{2}; "
                        r"it may change again on \d{4}-\d{2}-01", message), message


def test_a_deactivated_apps_table_offers_no_change(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.admin.deactivate(app_id)
    lines = imlimits("app", "show", str(app_id), target=server.target).stdout.splitlines()
    assert lines[0] == f"app {app_id}: Trial, DEACTIVATED (停用)"
    items = [line for line in lines[2:] if not line.startswith("Community")]
    assert len(items) == 4 and all(line.endswith("no: deactivated") for line in items)


def test_one_spelling_per_concept(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id, at=at("2025-06-01T10:00:00+08:00"))
    client.admin.upgrade(app_id, Edition.PRO, at=at("2025-06-02T10:00:00+08:00"))
    history = imlimits("app", "history", str(app_id), target=server.target).stdout
    history_json = json.loads(imlimits("app", "history", str(app_id), "--json", target=server.target).stdout)
    bill_json = json.loads(imlimits("bill", str(app_id), "2025-07", "--json", target=server.target).stdout)
    show_json = json.loads(imlimits("app", "show", str(app_id), "--json", target=server.target).stdout)
    # Tables say the console's names; JSON values keep one identifier each.
    assert "Trial -> Pro" in history and "- -> ACTIVE" in history
    assert [(c["operation"], c["item"], c["new_value"]) for c in history_json][:2] == [
        ("create", "status", "ACTIVE"), ("upgrade", "edition", "PRO")]
    assert (show_json["edition"], bill_json["lines"][0]["level"]) == ("PRO", "PRO")
    everything = history + json.dumps(history_json) + json.dumps(bill_json) + json.dumps(show_json)
    for wire_name in ("EDITION_", "APP_STATUS_", "CreateApp", "ChangePlan"):
        assert wire_name not in everything
    assert "TRIAL" not in history and "PRO" not in history
    assert all(" PRO " not in line["reason"] and "EDITION" not in line["reason"] for line in bill_json["lines"])


def test_usage_shows_rooms_and_other_groups_apart(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.check.create_room(app_id, "live", owner="alice")
    client.check.create_group(app_id, "team", GroupType.WORK, owner="alice")
    room = imlimits("check", "create-group", str(app_id), "stage", "--type", "avchatroom", target=server.target)
    assert room.stdout.strip() == "admitted"
    lines = imlimits("usage", str(app_id), target=server.target).stdout.splitlines()
    assert [line.split() for line in lines[2:]] == [["AVChatRooms", "2", "10"], ["other", "groups", "1", "-"]]
    data = json.loads(imlimits("usage", str(app_id), "--json", target=server.target).stdout)
    assert (data["av_rooms"], data["other_groups"], data["groups"]) == (2, 1, 3)


def test_tables_align_cjk_and_emoji_ids(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.check.create_group(app_id, "团队🎉", GroupType.WORK, owner="张三", members=["bob"])
    lines = imlimits("usage", str(app_id), "--user", "张三", "--group", "团队🎉", target=server.target).stdout
    rows = lines.splitlines()[1:]
    # The USED column starts at the same display column on every row.
    starts = {wcswidth(re.match(r".*?\S\s{2,}", row).group()) for row in rows}  # type: ignore[union-attr]
    assert len(rows) == 5 and len(starts) == 1, lines


def test_table_pads_by_display_width() -> None:
    text = table(("ID", "N"), [("团队", 1), ("🎉", 2), ("ab", 3)])
    assert {wcswidth(line[:line.rindex(" ") + 1]) for line in text.splitlines()} == {6}


def _arguments(parser: argparse.ArgumentParser, path: str = "imlimits") -> list[tuple[str, argparse.Action]]:
    found: list[tuple[str, argparse.Action]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _arguments(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction | argparse._VersionAction):
            found.append((path, action))
    return found


def test_help_describes_every_option_and_argument_with_its_default() -> None:
    arguments = _arguments(cli_module._parser())
    assert len(arguments) > 60
    globals_ = {option for path, action in arguments if path == "imlimits" for option in action.option_strings}
    for path, action in arguments:
        where = f"{path} {action.option_strings or action.metavar}"
        if path != "imlimits" and set(action.option_strings) <= globals_ and action.option_strings:
            # A command's copy of a global option: described once, at the top (see below).
            assert action.help is argparse.SUPPRESS, where
            continue
        assert action.help and action.help is not argparse.SUPPRESS, where
        if action.option_strings:
            assert "default" in action.help or "(required)" in action.help, where


def test_help_gives_the_at_format_and_every_exit_status() -> None:
    change = imlimits("app", "change", "--help").stdout
    assert "2026-11-01T09:30:00+08:00" in change and "--trust-client-time" in change
    top = imlimits("--help").stdout
    for status in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {status}" in top
    readme = (ROOT / "README.md").read_text()
    for status in ("| 0 |", "| 1 |", "| 2 |", "| 130 |"):
        assert status in readme


def test_bills_of_two_months_read_as_one_rule(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id, at=at("2025-10-01T10:00:00+08:00"))
    client.admin.upgrade(app_id, Edition.PRO, at=at("2025-10-12T10:00:00+08:00"))
    client.admin.deactivate(app_id, at=at("2025-11-20T10:00:00+08:00"))
    october = json.loads(imlimits("bill", str(app_id), "2025-10", "--json", target=server.target).stdout)
    november = json.loads(imlimits("bill", str(app_id), "2025-11", "--json", target=server.target).stdout)
    assert all(line["reason"].startswith("month of an edition change (调整业务版本当月; edition adjusted on "
                                         "2025-10-12): charged at the configuration the app started with on "
                                         "2025-10-01, "
                                         "what changed from 2025-11-01")
               for line in october["lines"])
    assert all(line["reason"].startswith("month without an edition change (调整业务版本次月及以后): charged at "
                                         "the highest level held in 2025-11; deactivated on 2025-11-20, "
                                         "nothing is charged after 2025-11")
               for line in november["lines"])
    assert (october["total"], november["total"]) == (0, 99900)
    table_lines = imlimits("bill", str(app_id), "2025-11", target=server.target).stdout.splitlines()
    assert table_lines[1].startswith("rule: month without an edition change (调整业务版本次月及以后)")
    assert table_lines[3].split() == ["edition", "Pro", "yes", "999.00", "CNY", "Pro", "is", "charged"]


# Issue 23: typos, help, export lines and wording.

@pytest.mark.parametrize(("args", "unknown", "meant", "command"), [
    (["app", "upgrade", "1", "--editon", "pro"], "--editon", "--edition", "imlimits app upgrade"),
    (["check", "create-group", "1", "team", "--ownr", "alice"], "--ownr", "--owner", "imlimits check create-group"),
    (["--target", "127.0.0.1:1", "usage", "1", "--gruop=team"], "--gruop", "--group", "imlimits usage"),
])
def test_a_mistyped_option_is_named_with_the_closest_one_and_its_commands_help(
        args: list[str], unknown: str, meant: str, command: str) -> None:
    done = imlimits(*args)
    assert done.returncode == 2
    assert one_line_error(done) == (f"imlimits: unknown option {unknown} for `{command}`; did you mean {meant}? "
                                    f"(see `{command} --help`)")


def test_an_abbreviated_option_still_works_and_values_are_not_options(server: ServerProcess, client: Client,
                                                                      app_id: int) -> None:
    client.admin.create_app(app_id)
    # --own is short for --owner (argparse's abbreviations); "join" is the owner's name, a value, not a command.
    done = imlimits("check", "create-group", str(app_id), "team", "--own", "join", "--max-members", "3",
                    target=server.target)
    assert done.returncode == 0, done.stderr
    done = imlimits("check", "create-group", str(app_id), "team-2", "--owner=--odd", target=server.target)
    assert done.returncode == 0, done.stderr


def test_help_lists_every_action_and_says_the_global_options_once() -> None:
    top = imlimits("--help").stdout
    app = imlimits("app", "--help").stdout
    assert "create, show, list, upgrade (升级), change (变配), deactivate (停用), history" in " ".join(top.split())
    assert "create, show, list, upgrade (升级), change (变配), deactivate (停用), history" in " ".join(app.split())
    assert "--target HOST:PORT" in top and "exit status:" in top
    for command in (["app"], ["app", "upgrade"], ["check", "join"], ["admin", "export"], ["usage"]):
        own = imlimits(*command, "--help").stdout
        assert "--target HOST:PORT" not in own and "exit status:" not in own and "--tls-key" not in own, command
        assert "`imlimits --help`" in own, command
        assert len(own.splitlines()) < 40, command


def test_the_consoles_help_shows_placeholders_and_defaults() -> None:
    from imlimits_console import main as console_main
    parser = console_main._parser()
    for action in parser._actions:
        if action.option_strings and action.option_strings != ["-h", "--help"]:
            assert action.help and "default" in action.help, action.option_strings
            if action.nargs is None:
                assert action.metavar, action.option_strings
    shown = subprocess.run([sys.executable, "-m", "imlimits_console.main", "--help"], capture_output=True, text=True,
                           timeout=60).stdout
    assert "--listen HOST:PORT" in shown and "--target HOST:PORT" in shown and "--token-file FILE" in shown
    assert "127.0.0.1:8080" in shown and "localhost:50051" in shown


def test_export_to_standard_output_is_json_lines_only(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.check.create_group(app_id, "team", GroupType.WORK, owner="alice", members=["bob"])
    client.check.create_room(app_id, "stage", owner="host")
    for extra in ([], ["--json"]):
        done = imlimits("admin", "export", str(app_id), *extra, target=server.target)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.split("\n")
        assert lines[-1] == "" and all(lines[:-1]), f"an empty line in {done.stdout!r}"
        assert {json.loads(line)["groupId"] for line in lines[:-1]} == {"team", "stage"}
        assert "exported 2 groups" in done.stderr or json.loads(done.stderr)["groups"] == 2


def test_wording_a_newcomer_reads(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    exists = imlimits("app", "create", str(app_id), target=server.target)
    assert one_line_error(exists) == f"imlimits: app {app_id} already exists"
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "installs the same three commands" in operations
    assert all(f"`{script}`" in operations for script in ("imlimits-server", "imlimits", "imlimits-console"))


def test_usage_of_a_group_shows_the_limit_that_applies(server: ServerProcess, client: Client, app_id: int) -> None:
    client.admin.create_app(app_id)
    client.check.create_group(app_id, "pair", GroupType.WORK, owner="alice", max_members=1)
    rows = imlimits("usage", str(app_id), "--group", "pair", target=server.target).stdout.splitlines()
    assert rows[-1].split()[-6:] == ["1", "1", "(its", "own", "max_members;", "Work)"]
    data = json.loads(imlimits("usage", str(app_id), "--group", "pair", "--json", target=server.target).stdout)
    assert (data["group_members"], data["group_members_limit"], data["group_max_members"]) == (1, 1, 1)
