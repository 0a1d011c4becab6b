"""The Raft paper's Figure 8, scripted: an old term's entry replicated to a majority by a later
leader is not committed by counting replicas (Raft §5.4.2), and so may be — and is — overwritten;
no committed entry is ever lost."""

from __future__ import annotations

from sim_helpers import commands, settle, wait_commit

from raftkv.sim import Cluster, SimConfig
from raftkv.sim.trace import Event

X = b"X"  # S1's entry of an old term


def _quiet(c: Cluster) -> None:
    """No spontaneous elections: clocks run 1000x slow; the script campaigns explicitly."""
    for i in c.ids:
        c.set_skew(i, 1000.0)


def _win(c: Cluster, i: int) -> None:
    for _ in range(3):  # a stale term may cost one rejected PreVote round
        c.campaign(i)
        c.tick(3)
        if c.leader() == i:
            return
    raise AssertionError(f"node {i} did not win; leader={c.leader()}")


def run_figure8() -> tuple[Cluster, dict[str, object]]:
    # One entry per AppendEntries and one in flight, so X and the new leader's no-op travel
    # in separate messages, as in the figure.
    # No CheckQuorum: with frozen clocks, followers would ignore candidates forever (lease).
    cfg = SimConfig(max_size_per_msg=1, max_inflight_msgs=1, check_quorum=False)
    c = Cluster(5, seed=8, config=cfg)
    _quiet(c)
    seen: dict[str, object] = {}
    _win(c, 1)
    base = c.propose(b"base")
    wait_commit(c, base, c.ids)
    # (a) S1 leads; X reaches S2 only; S1 crashes.
    c.partition([1, 2], [3], [4], [5])
    x_index = c.propose(X, via=1)
    c.run_until(lambda: len(c.log(2)) >= x_index, 10)
    x_term = c.log(1)[-1].term
    c.crash(1)
    # (b) S5 wins with S3 and S4, appends its no-op at X's index, and is cut off at once.
    c.partition([3, 4, 5], [2])

    def cut_new_leader(e: Event) -> None:
        if e["ev"] == "role" and e["node"] == 5 and e["role"] == "leader" and "b" not in seen:
            seen["b"] = True
            c.at(c.now_ms, lambda: c.partition([3, 4], [2], [5]))

    c.subscribe(cut_new_leader)
    _win(c, 5)
    assert c.log(5)[-1].index == x_index and c.log(5)[-1].term > x_term
    assert len(c.log(3)) < x_index and len(c.log(4)) < x_index
    c.crash(5)
    # (c) S1 restarts and wins with S2 and S3; it replicates X to S3 (X on a majority) but
    # its no-op of the current term only to S2. S3 is paused so S2's ack arrives first.
    c.restart(1)
    c.set_skew(1, 1000.0)
    c.partition([1, 2, 3], [4])

    def on_event(e: Event) -> None:
        if e["ev"] == "role" and e["node"] == 1 and e["role"] == "leader" and "c" not in seen:
            seen["c"] = True
            c.at(c.now_ms, lambda: c.pause(3, 30))
        if (
            e["ev"] == "deliver"
            and e["node"] == 1
            and e["kind"] == "app_resp"
            and e["from"] == 3
            and not e["reject"]
            and e["index"] == x_index
            and "c_commit" not in seen
        ):
            # X is now on S1, S2, S3. Record S1's commit, then crash S1 with its no-op to S3
            # still in its socket buffer.
            seen["c_commit"] = c.commit_index(1)
            seen["c_logs"] = {i: list(c.log(i)) for i in (1, 2, 3)}
            c.at(c.now_ms, lambda: c.crash(1, drop_outgoing=True))

    c.subscribe(on_event)
    _win(c, 1)
    seen["c_term"] = c.term(1)
    c.run_until(lambda: "c_commit" in seen and not c.is_up(1), 20)
    # (d) S5 restarts and wins with S3 and S4 (their last term is below S5's); it overwrites X.
    c.restart(5)
    c.set_skew(5, 1000.0)
    c.partition([2, 3, 4, 5])
    _win(c, 5)
    wait_commit(c, x_index + 1, [3, 4, 5])
    seen["d_logs"] = {i: list(c.log(i)) for i in (3, 4, 5)}
    seen["x_index"] = x_index
    # Everyone back: S1 and S2 drop X too.
    c.restart(1)
    c.heal()
    for i in c.ids:
        c.set_skew(i, 1.0)
    c.check_liveness()
    settle(c)
    return c, seen


def test_figure8_old_term_entry_is_not_committed_by_counting_replicas() -> None:
    c, seen = run_figure8()
    x_index = seen["x_index"]
    assert isinstance(x_index, int)
    c_logs = seen["c_logs"]
    assert isinstance(c_logs, dict)
    # (c): X sat on a majority (S1, S2, S3) ...
    for i in (1, 2, 3):
        assert c_logs[i][x_index - 1].data == X
    # ... yet S1 had not committed it: its term-3 no-op was on S1 and S2 only.
    assert seen["c_commit"] < x_index
    # (d): S5's entry at X's index won and committed.
    d_logs = seen["d_logs"]
    assert isinstance(d_logs, dict)
    assert all(d_logs[i][x_index - 1].data == b"" for i in (3, 4, 5))
    assert c.invariants.committed[x_index].data == b""
    # No committed entry was lost, and in the end the logs agree without X.
    for i in c.ids:
        assert X not in commands(c.log(i))
        assert commands(c.committed(i))[0] == b"base"
        assert c.committed(i) == c.committed(c.ids[0])[: len(c.committed(i))]
