"""`make mutate`: plant one known bug at a time in a scratch copy and check that the tests catch it.

Each mutation in tools/mutations.toml names a file, an exact piece of its
text, what to put instead, and the tests that must catch it. Every mutation
is applied alone to its own scratch copy of the repository (the working tree
is never touched), its tests run there, and a table says caught or survived.

Exit status: 0 when every mutant was caught; 1 when one survived; 2 when the
list is out of step with the code (a mutation's text is not found exactly
once, a named test does not exist) or the tests fail without any mutation.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LIST = ROOT / "tools" / "mutations.toml"
# pytest's exit codes: 1 tests failed, 2 collection failed (e.g. the mutant broke an import).
CAUGHT_EXIT_CODES = (1, 2)
RUN_TIMEOUT_SECONDS = 900


class ListOutOfStep(Exception):
    """The mutation list no longer matches the code or the tests; it says which mutation and which file."""


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]

    def mutated(self, root: Path) -> str:
        """The file's text with this mutation applied; ListOutOfStep unless the text is found exactly once."""
        path = root / self.file
        if not path.is_file():
            raise ListOutOfStep(f"mutation {self.name!r} no longer applies: {self.file} does not exist")
        text = path.read_text()
        found = text.count(self.find)
        if found != 1:
            raise ListOutOfStep(
                f"mutation {self.name!r} no longer applies to {self.file}: its text is found {found} times, "
                f"not once:\n    {self.find!r}\nupdate tools/mutations.toml to the code as it is now")
        return text.replace(self.find, self.replace)

    def apply(self, root: Path) -> None:
        (root / self.file).write_text(self.mutated(root))


@dataclass(frozen=True)
class Verdict:
    mutation: Mutation
    caught: bool
    seconds: float
    detail: str


def load(path: Path) -> list[Mutation]:
    data = tomllib.loads(path.read_text())
    mutations = []
    for raw in data["mutation"]:
        tests = tuple(raw["tests"])
        if not tests:
            raise ListOutOfStep(f"mutation {raw['name']!r} names no tests")
        mutations.append(Mutation(raw["name"], raw["file"], raw["find"], raw["replace"], tests))
    names = [mutation.name for mutation in mutations]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ListOutOfStep(f"mutation names used twice: {duplicates}")
    return mutations


def scratch_copy(destination: Path) -> Path:
    """The repository's files as they are now (committed or not, ignored ones left out)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            check=True, capture_output=True).stdout.decode().split("\0")
    root = destination / "repo"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return root


def environment(root: Path) -> dict[str, str]:
    """Imports resolve to the scratch copy first, before the editable install of the working tree."""
    paths = [str(root / part) for part in ("gen", "server", "client", "console", "tests")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONDONTWRITEBYTECODE": "1"}


def check_imports_from(root: Path) -> None:
    probe = "import imlimits, imlimits_client, imlimits_console, imlimits_server; print(imlimits_server.__file__, " \
            "imlimits_client.__file__, imlimits_console.__file__, imlimits.__file__)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, env=environment(root), capture_output=True,
                          text=True, check=True)
    outside = [path for path in done.stdout.split() if not Path(path).resolve().is_relative_to(root.resolve())]
    if outside:
        raise RuntimeError(f"the scratch copy's tests would import the working tree's code: {outside}")


def pytest(root: Path, tests: tuple[str, ...], *extra: str) -> subprocess.CompletedProcess[str]:
    # No shrinking: a mutant needs a verdict, not a minimal example.
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--hypothesis-profile=mutate",
               *extra, *tests]
    try:
        return subprocess.run(command, cwd=root, env=environment(root), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout if isinstance(expired.stdout, str) else ""
        return subprocess.CompletedProcess(command, -1, output, "timed out")


def last_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[-1][:100] if lines else ""


def baseline(mutations: list[Mutation]) -> None:
    """Every named test exists and passes without any mutation; else a caught mutant would prove nothing."""
    tests = tuple(dict.fromkeys(test for mutation in mutations for test in mutation.tests))
    with tempfile.TemporaryDirectory(prefix="imlimits-mutate-") as scratch:
        root = scratch_copy(Path(scratch))
        check_imports_from(root)
        collected = pytest(root, tests, "--collect-only")
        if collected.returncode != 0:
            raise ListOutOfStep("a test named in tools/mutations.toml does not exist:\n" + collected.stdout[-2000:])
        print(f"baseline: {len(tests)} test selections, unmutated ...", flush=True)
        started = time.monotonic()
        done = pytest(root, tests)
        if done.returncode != 0:
            raise ListOutOfStep("the tests fail without any mutation:\n" + done.stdout[-3000:])
        print(f"baseline: passed in {time.monotonic() - started:.0f} s ({last_line(done.stdout)})", flush=True)


def run(mutation: Mutation) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="imlimits-mutate-") as scratch:
        root = scratch_copy(Path(scratch))
        mutation.apply(root)
        started = time.monotonic()
        done = pytest(root, mutation.tests)
        seconds = time.monotonic() - started
    if done.returncode == -1:
        return Verdict(mutation, True, seconds, "timed out (a hang counts as caught)")
    caught = done.returncode in CAUGHT_EXIT_CODES
    failed = [line for line in done.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return Verdict(mutation, caught, seconds, (failed[0] if failed else last_line(done.stdout))[:100])


def table(verdicts: list[Verdict]) -> str:
    width = max(len(verdict.mutation.name) for verdict in verdicts)
    rows = [f"{'mutation':<{width}}  {'result':<8}  {'time':>6}  first failure",
            f"{'-' * width}  {'-' * 8}  {'-' * 6}  {'-' * 13}"]
    for verdict in verdicts:
        result = "caught" if verdict.caught else "SURVIVED"
        rows.append(f"{verdict.mutation.name:<{width}}  {result:<8}  {verdict.seconds:>5.0f}s  {verdict.detail}")
    caught = sum(verdict.caught for verdict in verdicts)
    rows.append(f"\n{caught} caught, {len(verdicts) - caught} survived, of {len(verdicts)} mutations")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--list", type=Path, default=DEFAULT_LIST, help="the mutation list (TOML)")
    parser.add_argument("--only", action="append", default=[], metavar="TEXT",
                        help="run only mutations whose name contains TEXT (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="run each selected mutation this many times")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run of the named tests")
    options = parser.parse_args(argv)
    try:
        mutations = load(options.list)
        if options.only:
            mutations = [m for m in mutations if any(text in m.name for text in options.only)]
            if not mutations:
                raise ListOutOfStep(f"no mutation name contains any of {options.only}")
        for mutation in mutations:
            mutation.mutated(ROOT)  # read only: the whole list is checked before anything runs
        if not options.no_baseline:
            baseline(mutations)
        verdicts = []
        for mutation in mutations:
            for _ in range(options.repeat):
                verdicts.append(run(mutation))
                verdict = verdicts[-1]
                print(f"{'caught  ' if verdict.caught else 'SURVIVED'} {mutation.name} ({verdict.seconds:.0f} s)",
                      flush=True)
    except ListOutOfStep as error:
        print(f"make mutate: {error}", file=sys.stderr)
        return 2
    print()
    print(table(verdicts))
    return 0 if all(verdict.caught for verdict in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
