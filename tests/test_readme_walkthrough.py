"""The README is a test: its "Try it" commands and its client example run, in order, against a fresh server.

The server is started as `make run` starts it (an embedded redis-server in its own data directory,
the server's own clock). The commands run in one bash, as pasted into a new shell from the repository
root: a line whose comment says "(exit N)" must exit N, every other line 0.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXPECTED_EXIT = re.compile(r"#.*\(exit (\d+)\)")


def section(heading: str) -> str:
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else None]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)


def commands(block: str) -> list[str]:
    """The block's command lines, continuations joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def script(lines: list[str]) -> str:
    """Each line run as typed; then its exit status compared with the one its comment promises."""
    steps = ["cd " + _quote(str(ROOT))]
    for number, line in enumerate(lines, 1):
        expected = EXPECTED_EXIT.search(line)
        want = int(expected.group(1)) if expected else 0
        steps += [line, f'status=$?; echo "[step {number} exit $status]"; '
                        f'[ "$status" = {want} ] || {{ echo "README step {number} exited $status, not {want}: "'
                        f'{_quote(line)} >&2; exit 97; }}']
    return "\n".join(steps) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture(scope="module")
def fresh_server() -> Iterator[ServerProcess]:
    """As `make run` serves: the embedded redis-server in a data directory of its own."""
    with tempfile.TemporaryDirectory(prefix="imlimits-readme-") as data_dir:
        # A generous Redis timeout: the commands are under test here, not fsync latency on a busy CI machine.
        server = ServerProcess("--data-dir", data_dir, "--redis-timeout", "1").start()
        yield server
        server.stop()


def test_try_it_starts_with_make_run_and_puts_the_command_line_on_path() -> None:
    sh = blocks(section("Try it"), "sh")
    assert sh[0].strip() == "make run"
    assert commands(sh[1])[0] == 'export PATH="$PWD/.venv/bin:$PATH"'
    assert not re.search(r"\[--?\w", "".join(sh)), "no optional-argument brackets in copy-paste blocks"


def test_readme_walkthrough_then_client_example(fresh_server: ServerProcess) -> None:
    walkthrough = [line for block in blocks(section("Try it"), "sh")[1:] for line in commands(block)]
    env = {**os.environ, "IMLIMITS_TARGET": fresh_server.target,
           # Where `make test` did not make ./.venv, the running interpreter's scripts stand in for it.
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(["bash", "-c", script(walkthrough)], capture_output=True, text=True, env=env, timeout=240,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("[step ") == len(walkthrough)
    # The refusals the README promises, each explained.
    assert "refused 10014: the group's own max_members (2) would be exceeded: it has 1 member" in done.stdout
    assert re.search(r"refused: edition was already changed in \d{4}-\d{2}; it may change again on "
                     r"\d{4}-\d{2}-01 \(a revert to Trial is allowed\)", done.stderr)
    assert "refused 60016: the app is deactivated" in done.stdout

    (example,) = blocks(section("The client library"), "python")
    ran = subprocess.run([sys.executable, "-c", example.replace("localhost:50051", fresh_server.target)],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert ran.returncode == 0, ran.stderr


def test_make_run_installs_no_dev_tools() -> None:
    """`make -n` prints what `make run` would do where no venv exists yet.

    make runs a recipe line that calls $(MAKE) even under -n: PYTHON=true makes that line's
    `python -m venv` a no-op, so nothing is created.
    """
    done = subprocess.run(["make", "-n", "run", "VENV=.venv-never-made", "PYTHON=true"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert not (ROOT / ".venv-never-made").exists()
    assert done.returncode == 0, done.stderr
    installs = [line for line in done.stdout.splitlines() if "pip install" in line]
    assert installs and installs[-1].endswith("pip install --quiet -e ."), installs
    for dev_tool in ("[dev]", "mypy", "ruff", "hypothesis", "grpcio-tools", "pytest"):
        assert not any(dev_tool in line for line in installs)
    assert 'export PATH="$PWD/.venv/bin:$PATH"' in done.stdout


def test_soak_duration_is_the_same_everywhere() -> None:
    mentions = [
        *re.findall(r"`make soak`[^.]*?about (\d+) s", README),
        *re.findall(r"Bounded soak \(about (\d+) s\)", (ROOT / "Makefile").read_text()),
        *re.findall(r"`make soak`, about (\d+) s", (ROOT / "docs" / "operations.md").read_text()),
    ]
    assert len(mentions) >= 3 and len(set(mentions)) == 1, mentions


def test_the_project_stands_alone() -> None:
    """No link leaves the repository for the shared folder it was written beside."""
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        text = page.read_text()
        assert "../shared" not in text and "/work/shared" not in text, page
