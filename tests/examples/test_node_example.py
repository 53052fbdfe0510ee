"""examples/node against a real server: node runs the example, then the server is stopped under it.

`make test` installs node and npm (Debian's, where missing) and the example's packages (`npm ci`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import RedisProcess, ServerProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"


@pytest.fixture
def stoppable_server() -> Iterator[ServerProcess]:
    """A server of this test's own: the test stops it to make the outage."""
    redis_process = RedisProcess().start()
    process = ServerProcess("--redis-url", redis_process.url).start()
    yield process
    process.stop()
    redis_process.stop()


def test_the_node_example_runs_its_checks_a_batch_a_refusal_and_an_outage(stoppable_server: ServerProcess) -> None:
    node = shutil.which("node")
    if node is None or not (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node or the example's packages are missing: run `make test`, which installs them")
    example = subprocess.Popen(
        [node, "example.js", "--outage"], cwd=EXAMPLE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
        env={"PATH": "/usr/bin:/bin", "IMLIMITS_TARGET": stoppable_server.target, "IMLIMITS_APP_ID": "1400000777"})
    assert example.stdin is not None and example.stdout is not None
    try:
        before: list[str] = []
        for line in example.stdout:
            before.append(line.rstrip("\n"))
            if line.startswith("stop the imlimits server now"):
                break
        else:
            raise AssertionError("the example ended before its outage step:\n" + "\n".join(before))
        stoppable_server.stop()
        example.stdin.write("\n")
        example.stdin.flush()
        after, _ = example.communicate(timeout=60)
    finally:
        if example.poll() is None:
            example.kill()
            example.wait()
    output = "\n".join(before) + "\n" + after
    assert example.returncode == 0, output
    assert "app 1400000777 created on EDITION_TRIAL" in output
    assert "CreateGroup team: admitted" in output
    assert "JoinGroup team (25 users): refused 10038: the plan's member limit (20) would be exceeded" in output
    assert "Batch[3]: released 1" in output
    assert "Batch[4]: error INVALID_ARGUMENT: group_id: must not be empty" in output
    assert "team has 2 of 20 members" in output
    refusal = next(line for line in output.splitlines() if line.startswith("  -> reason "))
    assert refusal.startswith("  -> reason WRONG_OPERATION, ")
    assert '"edition":"EDITION_TRIAL"' in refusal and '"use":"Upgrade"' in refusal
    # The server is gone: the check's deadline ends it, and the stated policy answers (closed).
    assert "JoinGroup: imlimits did not answer (UNAVAILABLE): refused by policy (on_unavailable=deny)" in after \
        or "JoinGroup: imlimits did not answer (DEADLINE_EXCEEDED): refused by policy" in after, after
