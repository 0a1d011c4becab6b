import pytest

from raftkv.raft import ConfState, Entry, MemoryStorage, Snapshot, SnapshotMeta
from raftkv.raft.errors import Compacted, RaftError
from raftkv.raft.log import RaftLog


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    return [Entry(term=t, index=i, data=f"{t}/{i}".encode()) for i, t in pairs]


def make(stable: list[Entry]) -> RaftLog:
    st = MemoryStorage(ConfState(voters=(1,)))
    st.save(None, stable)
    return RaftLog(st)


def test_append_overwrites_a_conflicting_unstable_suffix() -> None:
    log = make(ents((1, 1), (2, 1)))
    log.append(ents((3, 1), (4, 1), (5, 1)))
    assert log.maybe_append(3, 1, 0, ents((4, 2))) == 4
    assert [(e.index, e.term) for e in log.entries(1)] == [(1, 1), (2, 1), (3, 1), (4, 2)]


def test_maybe_append_fails_when_the_previous_entry_does_not_match() -> None:
    log = make(ents((1, 1), (2, 2)))
    assert log.maybe_append(2, 1, 0, ents((3, 2))) is None
    assert log.maybe_append(5, 2, 0, ents((6, 2))) is None
    assert log.last_index() == 2


def test_maybe_append_commits_at_most_the_last_new_entry() -> None:
    log = make(ents((1, 1)))
    assert log.maybe_append(1, 1, 10, ents((2, 1))) == 2
    assert log.committed == 2


def test_conflict_with_committed_entry_is_refused() -> None:
    log = make(ents((1, 1), (2, 1)))
    log.commit_to(2)
    with pytest.raises(RaftError):
        log.maybe_append(1, 1, 0, ents((2, 2)))
    assert log.term(2) == 1


def test_find_conflict_by_term_skips_a_whole_term() -> None:
    log = make(ents((1, 1), (2, 1), (3, 2), (4, 2), (5, 2), (6, 4)))
    assert log.find_conflict_by_term(6, 3) == (5, 2)
    assert log.find_conflict_by_term(6, 1) == (2, 1)
    assert log.find_conflict_by_term(6, 0) == (0, 0)


def test_up_to_date_compares_last_term_then_length() -> None:
    log = make(ents((1, 1), (2, 2)))
    assert log.is_up_to_date(1, 3)
    assert log.is_up_to_date(2, 2)
    assert not log.is_up_to_date(1, 2)
    assert not log.is_up_to_date(9, 1)


def test_maybe_commit_only_for_the_given_term() -> None:
    # Raft §5.4.2
    log = make(ents((1, 1), (2, 2)))
    assert not log.maybe_commit(2, 3)
    assert log.maybe_commit(2, 2) and log.committed == 2


def test_stable_to_ignores_entries_overwritten_since() -> None:
    log = make([])
    log.append(ents((1, 1), (2, 1)))
    log.append(ents((2, 2)))
    log.stable_to(2, 1)  # the persisted entry 2 was of term 1, now replaced
    assert [e.term for e in log.unstable_entries()] == [1, 2]
    log.stable_to(2, 2)
    assert log.unstable_entries() == []


def test_restore_from_snapshot_and_compacted_reads() -> None:
    log = make(ents((1, 1), (2, 1)))
    snap = Snapshot(SnapshotMeta(index=10, term=3, conf_state=ConfState(voters=(1,))))
    log.restore(snap)
    assert (log.first_index(), log.last_index(), log.committed, log.term(10)) == (11, 10, 10, 3)
    with pytest.raises(Compacted):
        log.slice(5, 11)


def test_slice_spans_storage_and_unstable_and_honours_max_bytes() -> None:
    log = make(ents((1, 1), (2, 1)))
    log.append(ents((3, 1), (4, 1)))
    assert [e.index for e in log.slice(1, 5)] == [1, 2, 3, 4]
    assert [e.index for e in log.slice(2, 5, max_bytes=1)] == [2]
    assert [e.index for e in log.slice(1, 5, max_bytes=40)] == [1, 2]


def test_next_committed_entries() -> None:
    log = make(ents((1, 1), (2, 1), (3, 1)))
    log.commit_to(2)
    assert [e.index for e in log.next_committed_entries(1 << 20)] == [1, 2]
    log.applied_to(2)
    assert not log.has_next_committed_entries()


def test_memory_storage_save_with_a_gap_changes_nothing() -> None:
    from raftkv.raft import HardState

    st = MemoryStorage(ConfState(voters=(1,)))
    st.save(HardState(term=1, vote=1, commit=0), ents((1, 1)))
    with pytest.raises(RaftError):
        st.save(HardState(term=2, vote=2, commit=1), ents((5, 2)))
    assert st.hard_state() == HardState(term=1, vote=1, commit=0)
    assert st.last_index() == 1
