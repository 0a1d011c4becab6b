from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cluster import ThreadCluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThreadCluster]:
    """One cluster shared by a module's tests (each test uses its own keys)."""
    c = ThreadCluster()
    c.start()
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def fresh_cluster() -> Iterator[ThreadCluster]:
    """A cluster of the test's own, for tests that stop members."""
    c = ThreadCluster()
    c.start()
    try:
        yield c
    finally:
        c.close()
