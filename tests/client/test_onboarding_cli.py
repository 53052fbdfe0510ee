"""`imlimits admin import|export` and `imlimits app list`: the real command against the real server."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from harness import ServerProcess
from imlimits_client import Client

IMLIMITS = str(Path(sys.executable).parent / "imlimits")


def imlimits(server: ServerProcess, *args: str, stdin: str = "",
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IMLIMITS, *args], input=stdin, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "IMLIMITS_TARGET": server.target, **(env or {})})


def line(group_id: str, members: list[str], type: str = "GROUP_TYPE_WORK", **more: object) -> str:
    return json.dumps({"groupId": group_id, "type": type, "members": members, **more})


def test_import_reports_what_exceeds_the_plan_then_export_round_trips(server: ServerProcess, app_id: int,
                                                                      tmp_path: Path) -> None:
    source, copy = str(app_id * 1000 + 1), str(app_id * 1000 + 2)
    for app in (source, copy):
        assert imlimits(server, "app", "create", app).returncode == 0
    data = tmp_path / "groups.jsonl"
    data.write_text("\n".join([line("big", [f"u{i}" for i in range(25)], owner="boss"), "",
                               line("room", ["u1"], type="GROUP_TYPE_AVCHATROOM", owner="host"),
                               '{"group_id": "snake", "type": 2, "members": ["u2"], "max_members": 5}']) + "\n")
    done = imlimits(server, "admin", "import", source, str(data), env={"IMLIMITS_PROGRESS_SECONDS": "0"})
    assert done.returncode == 0, done.stderr
    assert "records read                 3" in done.stdout
    assert "memberships added            28" in done.stdout
    assert "1 thing exceeds the plan" in done.stdout
    assert ["group_members", "big", "20", "26"] in [row.split() for row in done.stdout.splitlines()]
    # Not a terminal: plain progress lines on standard error, no bar.
    assert "import: 3 records, 27 memberships" in done.stderr and "\r" not in done.stderr
    again = json.loads(imlimits(server, "admin", "import", source, str(data), "--json").stdout)
    assert (again["groups_created"], again["memberships_added"], again["over_limit_total"]) == (0, 0, 1)

    exported = tmp_path / "export.jsonl"
    done = imlimits(server, "admin", "export", source, "-o", str(exported))
    assert done.returncode == 0 and "exported 3 groups, 28 memberships" in done.stdout, done.stderr
    piped = imlimits(server, "admin", "export", source)
    assert sorted(piped.stdout.split()) == sorted(exported.read_text().split())
    assert imlimits(server, "admin", "import", copy, "-", stdin=piped.stdout).returncode == 0
    with Client(server.target, admin_timeout=10) as client:
        for user in ("boss", "host", "u1", "u2", "u24"):
            assert client.check.usage(int(copy), user=user).user_groups == \
                client.check.usage(int(source), user=user).user_groups
        for group_id in ("big", "room", "snake"):
            assert client.check.usage(int(copy), group_id=group_id).group_members == \
                client.check.usage(int(source), group_id=group_id).group_members

    listed = imlimits(server, "app", "list")
    assert [source, "Trial", "active", "50", "20", "10"] in [row.split() for row in listed.stdout.splitlines()]
    as_json = json.loads(imlimits(server, "app", "list", "--json").stdout)
    assert {app["app_id"] for app in as_json} >= {int(source), int(copy)}


def test_a_malformed_line_stops_the_import_before_it(server: ServerProcess, app_id: int) -> None:
    app = str(app_id)
    assert imlimits(server, "app", "create", app).returncode == 0
    with Client(server.target, admin_timeout=10) as client:
        client.check.create_group(app_id, "g", owner="o", members=["a", "b"])
        stream = "\n".join([line("g", ["a"], owner="o"), "", '{"groupId": "h", "members": [1', line("late", ["z"])])
        done = imlimits(server, "admin", "import", app, "-", "--replace", stdin=stream)
        assert done.returncode == 2
        assert "standard input line 3: not a GroupRecord" in done.stderr
        assert "nothing from that line on was sent" in done.stderr
        assert client.check.usage(app_id, group_id="g").group_members == 3  # --replace released nothing
        assert "late" not in {record.group_id for record in client.admin.export_groups(app_id)}

        # A record the server refuses is named by its line, blank lines counted.
        stream = "\n".join([line("ok", ["a"]), "", "", line("g", ["a"], type="GROUP_TYPE_PUBLIC")])
        done = imlimits(server, "admin", "import", app, "-", stdin=stream)
        assert done.returncode == 2
        assert "record 2 (group 'g'): type" in done.stderr and "(standard input line 4)" in done.stderr
        assert client.check.usage(app_id, group_id="ok").group_members == 1  # records before it stay applied
    missing = imlimits(server, "admin", "import", app, "/nonexistent/groups.jsonl")
    assert missing.returncode == 2 and "No such file" in missing.stderr


def test_a_terminal_gets_a_progress_bar(server: ServerProcess, app_id: int, tmp_path: Path) -> None:
    assert imlimits(server, "app", "create", str(app_id)).returncode == 0
    data = tmp_path / "groups.jsonl"
    data.write_text("".join(line(f"g{i}", [f"u{i}", "shared"], type="GROUP_TYPE_PUBLIC") + "\n" for i in range(30)))
    terminal, attached = pty.openpty()
    fcntl.ioctl(attached, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # as a real terminal has
    try:
        done = subprocess.run([IMLIMITS, "admin", "import", str(app_id), str(data)], stderr=attached,
                              stdout=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "IMLIMITS_TARGET": server.target})
        os.close(attached)
        drawn = b""
        while True:
            try:
                chunk = os.read(terminal, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(terminal)
    assert done.returncode == 0
    bar = drawn.decode()
    assert "import: 100%" in bar and "30 records" in bar and "memberships/s" in bar
    assert "over the plan" not in done.stdout.lower() and "nothing exceeds the plan" in done.stdout
