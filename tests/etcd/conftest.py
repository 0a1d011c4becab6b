"""Fixtures: one 3-member raftkv cluster per module (real processes, free ports)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from etcd_helpers import ETCD_BIN, EtcdCluster, need, start_raftkv

from raftkv.localcluster import LocalCluster

PROGRESS_EVERY = "300ms"  # the members' --experimental-watch-progress-notify-interval


@pytest.fixture(scope="module")
def rkv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    base: Path = tmp_path_factory.mktemp("rkv")
    c = start_raftkv(base, extra=["--experimental-watch-progress-notify-interval", PROGRESS_EVERY])
    try:
        yield c
    finally:
        c.kill_all()


@pytest.fixture(scope="module")
def etcdctl_bin() -> str:
    return need("etcdctl")


@pytest.fixture
def etcd_cluster(tmp_path: Path) -> Iterator[EtcdCluster]:
    """A fresh 3-member etcd 3.4 cluster (Debian's etcd-server) on free ports."""
    need("etcdctl")
    need(ETCD_BIN)
    c = EtcdCluster(tmp_path / "etcd")
    try:
        c.start()
        yield c
    finally:
        c.kill_all()
