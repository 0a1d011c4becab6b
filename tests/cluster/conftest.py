"""Fixtures for tests of real ``raftkv serve`` processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_helpers import start_cluster

from raftkv.localcluster import LocalCluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    c = start_cluster(tmp_path)
    try:
        yield c
    finally:
        c.kill_all()
