"""The embedded redis-server's data directory: private to its user, and never one someone else prepared."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from harness import ServerProcess
from imlimits.v1 import plan_pb2, plan_pb2_grpc

NOBODY = 65534


def _start(data_dir: Path) -> subprocess.CompletedProcess[str]:
    """A start that must be refused before it serves; one that serves is stopped with its redis-server."""
    process = subprocess.Popen([sys.executable, "-m", "imlimits_server.main", "--listen", "127.0.0.1:0",
                                "--data-dir", str(data_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"served instead of refusing:\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_the_data_is_readable_by_its_user_only(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)  # as earlier versions left it: restricted at start
    process = ServerProcess("--data-dir", str(data_dir)).start()
    try:
        with grpc.insecure_channel(process.target) as channel:
            plan_pb2_grpc.PlanServiceStub(channel).CreateApp(plan_pb2.CreateAppRequest(app_id=1_400_000_001))
    finally:
        process.stop()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"imlimits.lock", "redis.log"}
    assert any(path.name.endswith(".aof") for path in files)  # the history is there, and private
    assert {path.name: stat.S_IMODE(path.stat().st_mode) & 0o077 for path in files} == \
        {path.name: 0 for path in files}


def test_a_symlinked_data_dir_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "data").symlink_to(tmp_path / "elsewhere")
    done = _start(tmp_path / "data")
    assert done.returncode == 1 and "is a symbolic link" in done.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_a_data_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        theirs = tmp_path / "theirs"
        theirs.mkdir(mode=0o700)
        os.chown(theirs, NOBODY, NOBODY)
    else:
        theirs = Path("/")  # root's, and never this user's
    done = _start(theirs)
    assert done.returncode == 1 and "belongs to user id" in done.stderr
    assert list(theirs.iterdir()) == [] or theirs == Path("/")


def test_a_planted_lock_symlink_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o700)
    victim = tmp_path / "precious"
    victim.write_text("do not truncate me\n")
    (data_dir / "imlimits.lock").symlink_to(victim)
    done = _start(data_dir)
    assert done.returncode == 1 and "imlimits.lock is a symbolic link" in done.stderr
    assert victim.read_text() == "do not truncate me\n"
