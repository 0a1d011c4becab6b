"""Random messages stepped into a live cluster: local invariants hold and nothing raises.

A Byzantine peer can of course break global safety; what must hold is that no input makes a
node raise, regress its term, change a vote within a term, un-commit, or change a committed
entry — bad input is dropped, not obeyed into corruption.
"""

from __future__ import annotations

from harness import Net
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    Message,
    Propose,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    TimeoutNow,
    VoteResponse,
)
from raftkv.raft.types import Entry

ids = st.integers(min_value=-1, max_value=5)
small = st.integers(min_value=-2, max_value=12)
entries = st.lists(
    st.builds(Entry, term=small, index=small, data=st.binary(max_size=3)), max_size=3
).map(tuple)


def message(to: int) -> st.SearchStrategy[Message]:
    common = {"to": st.just(to), "frm": ids, "term": small}
    return st.one_of(
        st.builds(AppendEntries, **common, log_term=small, index=small, entries=entries, commit=small),
        st.builds(
            AppendResponse, **common, index=small, reject=st.booleans(), reject_hint=small, log_term=small
        ),
        st.builds(
            RequestVote, **common, pre=st.booleans(), last_index=small, last_term=small,
            transfer=st.booleans(),
        ),
        st.builds(VoteResponse, **common, pre=st.booleans(), reject=st.booleans()),
        st.builds(Heartbeat, **common, commit=small, ctx=st.binary(max_size=2)),
        st.builds(HeartbeatResponse, **common, ctx=st.binary(max_size=2)),
        st.builds(TimeoutNow, **common),
        st.builds(Propose, **common, entries=entries),
        st.builds(ReadIndex, **common, ctx=st.binary(max_size=2)),
        st.builds(ReadIndexResponse, **common, index=small, ctx=st.binary(max_size=2)),
    )


action = st.one_of(
    st.tuples(st.just("tick"), st.integers(1, 3), st.integers(1, 20)),
    st.tuples(st.just("campaign"), st.integers(1, 3), st.just(0)),
    st.tuples(st.just("propose"), st.integers(1, 3), st.just(0)),
    st.tuples(st.just("inject"), st.integers(1, 3), st.just(0)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=1, max_size=25), st.data())
def test_random_messages_never_corrupt_state(actions: list[tuple[str, int, int]], data: st.DataObject) -> None:
    net = Net(3)
    net.campaign(1)
    seen_votes: dict[tuple[int, int], int] = {}
    committed: dict[int, dict[int, tuple[int, bytes]]] = {i: {} for i in net.ids}
    last_term = {i: 0 for i in net.ids}
    last_commit = {i: 0 for i in net.ids}
    for kind, node, n in actions:
        raft_node = net.nodes[node]
        if kind == "tick":
            for _ in range(n):
                raft_node.tick()
        elif kind == "campaign":
            raft_node.campaign()
        elif kind == "propose":
            try:
                raft_node.propose(b"p")
            except Exception as e:  # only the documented error is allowed
                assert type(e).__name__ == "ProposalDropped"
        else:
            raft_node.step(data.draw(message(node)))
        net.deliver_all()
        for i in net.ids:
            s = net.nodes[i].status()
            assert s.applied <= s.commit <= s.last_index
            assert s.term >= last_term[i] and s.commit >= last_commit[i]
            last_term[i], last_commit[i] = s.term, s.commit
            if s.vote:
                assert seen_votes.setdefault((i, s.term), s.vote) == s.vote
            for ix, t, d in net.log_data(i):
                if ix <= s.commit:
                    assert committed[i].setdefault(ix, (t, d)) == (t, d)
