import pytest

from raftkv.raft.progress import Inflights, Progress, ProgressState, ProgressTracker


def test_inflights_ring() -> None:
    inf = Inflights(3)
    for i in (5, 7, 9):
        inf.add(i)
    assert inf.full()
    with pytest.raises(OverflowError):
        inf.add(11)
    inf.free_le(7)
    assert inf.count() == 1 and not inf.full()
    inf.free_first_one()
    assert inf.count() == 0


def test_probe_pauses_after_one_message_and_replicate_streams() -> None:
    p = Progress(next_index=5, max_inflight=2)
    assert p.state is ProgressState.PROBE and not p.is_paused()
    p.sent_entries(3, 7)
    assert p.is_paused() and p.next == 5  # a probe does not advance next
    assert p.acknowledge(7)
    assert p.state is ProgressState.REPLICATE and (p.match, p.next) == (7, 8)
    p.sent_entries(2, 9)
    p.sent_entries(2, 11)
    assert p.next == 12 and p.is_paused()  # window of 2 is full
    p.acknowledge(9)
    assert not p.is_paused() and p.match == 9


def test_maybe_decr_to_uses_the_hint_in_probe_and_ignores_stale_rejections() -> None:
    p = Progress(next_index=101, max_inflight=4)
    p.sent_entries(1, 101)
    assert not p.maybe_decr_to(50, 10)  # not the outstanding probe: stale
    assert p.maybe_decr_to(100, 10)
    assert p.next == 11 and not p.is_paused()
    p.become_replicate()
    p.match = 20
    assert not p.maybe_decr_to(15, 0)  # already matched beyond: stale
    assert p.maybe_decr_to(30, 0) and p.next == 21


def test_snapshot_state_resumes_probing_past_the_snapshot() -> None:
    p = Progress(next_index=3, max_inflight=4)
    p.become_snapshot(50)
    assert p.is_paused()
    p.acknowledge(50)
    assert p.state is ProgressState.REPLICATE and p.next == 51
    q = Progress(next_index=3, max_inflight=4)
    q.become_snapshot(50)
    q.snapshot_failed()
    assert q.state is ProgressState.PROBE and q.next == 1


def test_tracker_commit_votes_and_quorum_activity() -> None:
    t = ProgressTracker([1, 2, 3], max_inflight=8)
    t.reset(last_index=10, self_id=1, self_match=10)
    t.progress[2].maybe_update(8)
    assert t.committed() == 8
    t.record_vote(2, False)
    t.record_vote(2, True)  # the first answer counts
    assert t.votes == {2: False}
    assert not t.quorum_active(1)
    t.progress[3].recent_active = True
    assert t.quorum_active(1)
    assert not t.progress[3].recent_active  # the check resets the marks
