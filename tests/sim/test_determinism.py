"""One seed, one trace: byte-identical across runs and across PYTHONHASHSEED values."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from raftkv.sim import FAULT_KINDS, RunSpec, SimConfig, run_seed

DOCS = Path(__file__).resolve().parents[2] / "docs" / "trace.md"


def _trace(seed: int) -> str:
    buf = io.StringIO()
    r = run_seed(seed, RunSpec(ticks=800, faults=FAULT_KINDS, sim=SimConfig()), trace=buf)
    assert r.ok, r.message
    return buf.getvalue()


def test_same_seed_same_trace_different_seed_different_trace() -> None:
    a, b, c = _trace(5), _trace(5), _trace(6)
    assert a == b
    assert a != c


def test_trace_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    outs = []
    for hashseed in ("1", "2"):
        path = tmp_path / f"trace{hashseed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "raftkv.sim.cli",
                "--seed",
                "7",
                "--ticks",
                "1000",
                "--faults",
                "all",
                "--trace",
                str(path),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        outs.append(path.read_bytes())
    assert outs[0] == outs[1]
    assert len(outs[0]) > 100_000


def test_trace_schema_v1_is_documented_and_complete() -> None:
    lines = _trace(3).splitlines()
    header = json.loads(lines[0])
    assert header["v"] == 1 and header["seed"] == 3 and header["nodes"] == 5
    events = [json.loads(ln) for ln in lines[1:]]
    # Serialized with sorted keys and no spaces.
    assert all(
        ln == json.dumps(json.loads(ln), sort_keys=True, separators=(",", ":")) for ln in lines
    )
    kinds = {e["ev"] for e in events}
    for needed in (
        "send",
        "deliver",
        "drop",
        "role",
        "term",
        "vote",
        "append",
        "commit",
        "apply",
        "timer",
        "crash",
        "restart",
        "partition",
        "heal",
        "state",
    ):
        assert needed in kinds, needed
    documented = set(re.findall(r"^### `(\w+)`", DOCS.read_text(), re.M))
    assert kinds <= documented, kinds - documented
    assert all({"t_ms", "node", "ev"} <= e.keys() for e in events)
    times = [e["t_ms"] for e in events]
    assert times == sorted(times)
    state = next(e for e in events if e["ev"] == "state" and e.get("up"))
    for key in (
        "role",
        "term",
        "vote",
        "lead",
        "commit",
        "applied",
        "last_index",
        "snapshot_index",
        "election_elapsed",
        "randomized_election_timeout",
        "log_first",
        "log_terms",
    ):
        assert key in state, key
    sends = [e for e in events if e["ev"] == "send"]
    assert all({"from", "to", "kind", "term", "id", "due"} <= e.keys() for e in sends)
    apps = [e for e in sends if e["kind"] == "app"]
    assert apps and all({"index", "n", "log_term", "commit"} <= e.keys() for e in apps)
