"""Which incoming messages are consistent enough to step.

A message that fails here is dropped and counted; it never reaches the state machine. The
checks are local to the message (its fields agree with each other); checks that need the
node's state (e.g. a heartbeat's commit beyond our log) are made where the message is handled.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import assert_never

from raftkv.raft.messages import (
    AppendEntries,
    AppendResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    Message,
    Propose,
    ReadIndex,
    ReadIndexResponse,
    RequestVote,
    TimeoutNow,
    VoteResponse,
)


def valid_message(m: Message, voters: Collection[int], self_id: int) -> bool:
    """Whether ``m`` comes from a known node and its fields are consistent."""
    if m.frm != self_id and m.frm not in voters:
        return False
    if m.term < 0 or m.frm <= 0:
        return False
    match m:
        case Propose() | ReadIndex():
            return m.term == 0  # local requests carry no term
        case AppendEntries():
            if m.term == 0 or m.index < 0 or m.log_term < 0 or m.log_term > m.term:
                return False
            prev_term = m.log_term
            for n, e in enumerate(m.entries):
                if e.index != m.index + 1 + n or e.term < prev_term or e.term > m.term:
                    return False
                prev_term = e.term
            return 0 <= m.commit <= m.index + len(m.entries)
        case AppendResponse():
            return m.index >= 0 and m.reject_hint >= 0 and m.log_term >= 0 and m.term > 0
        case RequestVote():
            return (
                m.term > 0 and m.last_index >= 0 and 0 <= m.last_term <= m.term
            )
        case Heartbeat():
            return m.term > 0 and m.commit >= 0
        case InstallSnapshot():
            meta = m.snapshot.meta
            return (
                m.term > 0
                and meta.index > 0
                and 0 < meta.term <= m.term
                and len(meta.conf_state.voters) > 0
            )
        case ReadIndexResponse():
            return m.term > 0 and m.index >= 0
        case VoteResponse() | HeartbeatResponse() | TimeoutNow():
            return m.term > 0
        case _:
            assert_never(m)
