"""The committed stubs under src/raftkv/server/etcdpb/ equal what scripts/gen_proto.sh makes
from proto/ now (grpcio-tools and grpclib at the pinned versions)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PKG = Path("raftkv/server/etcdpb")


def test_committed_stubs_equal_fresh_ones(tmp_path: Path) -> None:
    missing = [
        m for m in ("grpc_tools", "grpclib.plugin") if importlib.util.find_spec(m) is None
    ]
    plugin = Path(sys.executable).parent / "protoc-gen-grpclib_python"
    if missing or not plugin.exists():
        msg = f"the stub generator is not installed ({missing or plugin}): pip install grpcio-tools grpclib"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    subprocess.run(
        ["bash", str(ROOT / "scripts/gen_proto.sh"), str(tmp_path)],
        check=True, env=dict(os.environ, PYTHON=sys.executable), capture_output=True,
    )  # fmt: skip
    fresh = {p.name: p.read_bytes() for p in (tmp_path / PKG).iterdir()}
    committed = {
        p.name: p.read_bytes()
        for p in (ROOT / "src" / PKG).iterdir()
        if p.is_file() and p.name != "__init__.py"
    }
    assert sorted(fresh) == sorted(committed)
    for name in fresh:
        assert fresh[name] == committed[name], f"{name} differs: run scripts/gen_proto.sh"
