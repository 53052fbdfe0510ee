"""docs/synapse.md's "Watch a room fill up", run as written against `make run-synapse`'s homeserver."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import RedisProcess, ServerProcess, WatchedProcess, free_port, temp_dir
from homeserver import REPOSITORY, START_TIMEOUT_SECONDS

DOC = REPOSITORY / "docs" / "synapse.md"
APP_ID = 1400000077


def section(heading: str) -> str:
    text = DOC.read_text()
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


class RunSynapse(WatchedProcess):
    """`make run-synapse`'s command: python -m homeserver, which writes the config and becomes Synapse."""

    name = "make run-synapse"
    ready_timeout = START_TIMEOUT_SECONDS

    def __init__(self, data_dir: Path, listen: str, target: str) -> None:
        tests = Path(__file__).parent
        super().__init__(env={"PYTHONPATH": os.pathsep.join([str(REPOSITORY / "tests"), str(tests)])})
        self.arguments = ["--data-dir", str(data_dir), "--listen", listen, "--target", target,
                          "--app-id", str(APP_ID)]

    def command(self) -> list[str]:
        return [sys.executable, "-m", "homeserver", *self.arguments]

    def read_ready(self, line: str) -> bool:
        return "Synapse now listening on TCP port" in line


@pytest.fixture
def run_synapse() -> Iterator[tuple[str, str]]:
    redis_server = RedisProcess().start()
    limits = ServerProcess("--redis-url", redis_server.url).start()
    listen = f"127.0.0.1:{free_port()}"
    homeserver = RunSynapse(temp_dir("imlimits-test-run-synapse-"), listen, limits.target)
    homeserver.launch()
    try:
        yield limits.target, listen
    finally:
        homeserver.stop()
        limits.stop()
        redis_server.stop()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walk-through uses curl (.ci/run installs it)")
def test_the_walkthrough_fills_a_room_and_refuses_its_21st_member(run_synapse: tuple[str, str]) -> None:
    target, listen = run_synapse
    blocks = shell_blocks(section("Watch a room fill up"))
    assert blocks[:2] == ["make run\n", "make run-synapse\n"]
    script = "\n".join(blocks[2:]).replace("http://127.0.0.1:8008", f"http://{listen}")
    script = script.replace("1400000001", str(APP_ID))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=REPOSITORY, env={**os.environ, "IMLIMITS_TARGET": target})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert sum('"room_id"' in line for line in lines) == 20  # 19 joins, and the late one after the upgrade
    refused = [line for line in lines if "M_RESOURCE_LIMIT_EXCEEDED" in line]
    assert len(refused) == 1 and '"im_code":10038' in refused[0] and "group_member_limit 20" in refused[0]
    assert re.search(r"members of group .* 20 +20", done.stdout)
