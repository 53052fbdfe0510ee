"""The committed generated code is exactly what `make proto` makes from protos/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import google.rpc.status_pb2

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    bindir = Path(sys.executable).parent
    plugins = []
    for name in ("protoc-gen-mypy", "protoc-gen-mypy_grpc"):
        plugin = shutil.which(name, path=str(bindir)) or shutil.which(name)
        assert plugin, f"{name} missing: install the dev extras (pip install -e '.[dev]')"
        plugins.append(f"--plugin={name}={plugin}")
    googleapis = Path(google.rpc.status_pb2.__file__).parents[2]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'protos'}", f"-I{googleapis}",
         f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", *plugins,
         f"--mypy_out={tmp_path}", f"--mypy_grpc_out={tmp_path}", *protos],
        check=True, cwd=ROOT / "protos", capture_output=True,
    )
    generated = _sources(tmp_path)
    committed = _sources(ROOT / "gen")
    assert generated.keys() == committed.keys(), "run `make proto` and commit gen/"
    for path, content in generated.items():
        assert committed[path] == content, f"gen/{path} differs from protos/: run `make proto` and commit gen/"


def _sources(root: Path) -> dict[Path, bytes]:
    return {p.relative_to(root): p.read_bytes() for p in root.rglob("*_pb2*") if p.suffix in (".py", ".pyi")}
