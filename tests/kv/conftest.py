import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from kv_harness import KV


@pytest.fixture
def kv() -> KV:
    return KV()
