"""Deterministic one-line renderings of entries, messages, Readies and status, for tests and
traces. Same input, same string — golden files depend on it."""

from __future__ import annotations

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
from raftkv.raft.rawnode import Ready, Status
from raftkv.raft.types import Entry, EntryType, HardState, Snapshot


def describe_entry(e: Entry) -> str:
    """``term/index`` followed by the data (``conf`` for a configuration entry)."""
    kind = "" if e.type is EntryType.NORMAL else " conf"
    return f"{e.term}/{e.index}{kind} {e.data!r}" if e.data else f"{e.term}/{e.index}{kind}"


def describe_entries(ents: tuple[Entry, ...] | list[Entry]) -> str:
    return "[" + ", ".join(describe_entry(e) for e in ents) + "]"


def describe_snapshot(s: Snapshot) -> str:
    voters = ",".join(str(v) for v in s.meta.conf_state.voters)
    return f"snap(index={s.meta.index} term={s.meta.term} voters={voters} bytes={len(s.data)})"


def describe_hard_state(hs: HardState) -> str:
    return f"term={hs.term} vote={hs.vote} commit={hs.commit}"


def describe_message(m: Message) -> str:
    """E.g. ``1->2 app term=2 log=1/3 commit=3 [2/4, 2/5 b'x']``."""
    head = f"{m.frm}->{m.to}"
    match m:
        case AppendEntries():
            return (
                f"{head} app term={m.term} log={m.log_term}/{m.index} commit={m.commit} "
                f"{describe_entries(m.entries)}"
            )
        case AppendResponse():
            if m.reject:
                return (
                    f"{head} app_resp term={m.term} reject index={m.index} "
                    f"hint={m.log_term}/{m.reject_hint}"
                )
            return f"{head} app_resp term={m.term} index={m.index}"
        case RequestVote():
            name = "prevote" if m.pre else "vote"
            extra = " transfer" if m.transfer else ""
            return f"{head} {name} term={m.term} last={m.last_term}/{m.last_index}{extra}"
        case VoteResponse():
            name = "prevote_resp" if m.pre else "vote_resp"
            return f"{head} {name} term={m.term} {'reject' if m.reject else 'grant'}"
        case Heartbeat():
            ctx = f" ctx={m.ctx!r}" if m.ctx else ""
            return f"{head} hb term={m.term} commit={m.commit}{ctx}"
        case HeartbeatResponse():
            ctx = f" ctx={m.ctx!r}" if m.ctx else ""
            return f"{head} hb_resp term={m.term}{ctx}"
        case InstallSnapshot():
            return f"{head} snap term={m.term} {describe_snapshot(m.snapshot)}"
        case TimeoutNow():
            return f"{head} timeout_now term={m.term}"
        case Propose():
            return f"{head} prop {describe_entries(m.entries)}"
        case ReadIndex():
            return f"{head} read ctx={m.ctx!r}"
        case ReadIndexResponse():
            return f"{head} read_resp term={m.term} index={m.index} ctx={m.ctx!r}"
        case _:
            assert_never(m)


def describe_ready(rd: Ready) -> str:
    """A multi-line rendering of every non-empty field of a Ready, in contract order."""
    lines: list[str] = []
    if rd.soft_state is not None:
        lines.append(f"soft: lead={rd.soft_state.lead} role={rd.soft_state.role.value}")
    if rd.hard_state is not None:
        lines.append(f"hard: {describe_hard_state(rd.hard_state)}")
    if rd.snapshot is not None:
        lines.append(f"snapshot: {describe_snapshot(rd.snapshot)}")
    if rd.entries:
        lines.append(f"entries: {describe_entries(rd.entries)}")
    for m in rd.messages:
        lines.append(f"send: {describe_message(m)}")
    for m in rd.messages_after_persist:
        lines.append(f"send after persist: {describe_message(m)}")
    if rd.committed_entries:
        lines.append(f"apply: {describe_entries(rd.committed_entries)}")
    for r in rd.read_states:
        lines.append(f"read: index={r.index} ctx={r.ctx!r}")
    return "\n".join(lines)


def describe_status(s: Status) -> str:
    """One line per node, plus the leader's view of each follower."""
    line = (
        f"{s.id}: {s.role.value} term={s.term} vote={s.vote} lead={s.lead} "
        f"last={s.last_index} commit={s.commit} applied={s.applied}"
    )
    for k, p in sorted(s.progress.items()):
        line += f"\n  {k}: {p.state.value} match={p.match} next={p.next}"
    return line
