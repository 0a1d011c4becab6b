"""etcd's Python clients against a raftkv cluster, each in its own venv with pinned versions
(``scripts/ensure_deps.sh`` makes them under .venv/clients/): ``aetcd`` over gRPC and
``etcd3gw`` over the JSON gateway — put, get, prefix, delete, txn, watch, leases."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from raftkv.localcluster import LocalCluster

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(__file__).parent / "clients"


def client_python(name: str) -> Path:
    py = ROOT / ".venv" / "clients" / name / "bin" / "python"
    if not py.exists():
        msg = f"no venv for the {name} client at {py.parent.parent} (run scripts/ensure_deps.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return py


@pytest.mark.parametrize("name", ["aetcd", "etcd3gw"])
def test_client(rkv: LocalCluster, name: str) -> None:
    py = client_python(name)
    m = rkv.members[1]
    r = subprocess.run(
        [str(py), str(CLIENTS / f"{name}_client.py"), "127.0.0.1", str(m.client_port)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == f"{name}: ok"
