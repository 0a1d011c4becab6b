"""The CI sweep, and two kept mutations of Raft that the sweep must catch (its teeth).

The sweep is ``CI_SWEEPS``: a nasty 3-node sweep (high loss, frequent crashes, crashes right
after votes / elections / commits, one-entry AppendEntries) and a 5-node sweep with every fault
at the default rates. Each mutation test runs the same seeds in-process, in order, and stops at
the first seed that catches the mutation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from raftkv.raft.log import RaftLog
from raftkv.raft.storage import MemoryStorage
from raftkv.raft.types import ConfState, HardState
from raftkv.sim import FAULT_KINDS, RunResult, run_seed
from raftkv.sim.cli import build_parser, main, spec_from_args

CI_SWEEPS: list[list[str]] = [
    ["--nodes", "3", "--seeds", "1-600", "--ticks", "3000", "--faults", "all", "--nasty"],
    ["--nodes", "5", "--seeds", "1-200", "--ticks", "3000", "--faults", "all"],
]


def _total(out: str) -> dict[str, int]:
    (line,) = [ln for ln in out.splitlines() if ln.startswith("total ")]
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


@pytest.mark.slow
@pytest.mark.parametrize("argv", CI_SWEEPS, ids=["nasty3", "all5"])
def test_ci_sweep(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc = main([*argv, "--jobs", "2"])
    out = capsys.readouterr().out
    assert rc == 0, out[-3000:]
    t = _total(out)
    seeds = t["seeds"]
    assert t["ok"] == seeds
    for kind in FAULT_KINDS:  # every fault kind was injected
        assert t[kind] > 0, kind
    assert t["leaders"] >= 5 * seeds  # leaders change many times per seed
    assert t["committed"] >= 200 * seeds  # hundreds of commits per seed on average


def _sweep(storage_factory_for: object = None) -> Iterator[tuple[list[str], RunResult]]:
    """Run the CI sweeps' seeds in-process, in order (so monkeypatches apply)."""
    for argv in CI_SWEEPS:
        ns = build_parser().parse_args(argv)
        spec = spec_from_args(ns)
        for seed in ns.seeds:
            factory = storage_factory_for(spec.nodes) if callable(storage_factory_for) else None
            yield argv, run_seed(seed, spec, storage_factory=factory)


def _first_caught(results: Iterator[tuple[list[str], RunResult]]) -> tuple[list[str], RunResult]:
    for argv, r in results:
        if not r.ok:
            return argv, r
    raise AssertionError("the CI sweep did not catch the mutation")


def _commit_by_counting(self: RaftLog, max_index: int, term: int) -> bool:
    """Mutation: commit a previous term's entry by counting replicas (violates Raft §5.4.2)."""
    if max_index > self.committed:
        self.commit_to(max_index)
        return True
    return False


@pytest.mark.slow
def test_mutation_commit_previous_term_by_counting_is_caught(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(RaftLog, "maybe_commit", _commit_by_counting)
    argv, r = _first_caught(_sweep())
    assert r.outcome == "safety", r.message
    assert re.search(r"leader-completeness|committed-stable|state-machine-safety", r.message)
    caught = f"commit mutation caught by {' '.join(argv)} at seed {r.seed}: {r.message}"
    # The CLI reports it with exit 1, the seed to replay and the last events.
    i = argv.index("--seeds")
    rc = main([*argv[:i], *argv[i + 2 :], "--seed", str(r.seed)])
    out = capsys.readouterr().out
    with capsys.disabled():
        print(caught)
    assert rc == 1
    assert f"seed={r.seed}" in out and "FAIL safety" in out and "replay: raftkv sim" in out
    assert len([ln for ln in out.splitlines() if ln.startswith("    {")]) >= 20


class _ForgetVoteOnRestart:
    """Mutation: a storage factory that, on restart, loses the persisted vote."""

    def __init__(self, nodes: int) -> None:
        self._voters = tuple(range(1, nodes + 1))
        self._stores: dict[int, MemoryStorage] = {}

    def __call__(self, node_id: int) -> MemoryStorage:
        st = self._stores.get(node_id)
        if st is None:
            st = self._stores[node_id] = MemoryStorage(ConfState(voters=self._voters))
        else:
            hs = st.hard_state()
            st.set_hard_state(HardState(term=hs.term, vote=0, commit=hs.commit))
        return st


@pytest.mark.slow
def test_mutation_forgetting_the_vote_on_restart_is_caught() -> None:
    argv, r = _first_caught(_sweep(_ForgetVoteOnRestart))
    assert r.outcome == "safety", r.message
    assert re.search(r"one-vote-per-term|election-safety", r.message)
    print(f"vote mutation caught by {' '.join(argv)} at seed {r.seed}: {r.message}")
