"""A short run of scripts/soak.py: kills, restarts, partitions and leader moves under write
load, then every acknowledged write is checked on every member."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[2] / "scripts" / "soak.py"


def test_a_short_chaos_soak_loses_no_acknowledged_write(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, str(SOAK), "--seconds", "20", "--seed", "7", "--writers", "4"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "RAFTKV_BENCH_DIR": str(tmp_path)},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"(\d+) fault steps, (\d+) acknowledged writes, (\d+) mismatches", r.stdout)
    assert m is not None, r.stdout
    steps, writes, mismatches = map(int, m.groups())
    assert steps > 0 and writes > 0 and mismatches == 0, r.stdout
