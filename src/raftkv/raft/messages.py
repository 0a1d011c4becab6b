"""The messages nodes exchange: one frozen, slotted struct per kind.

Every message carries ``to``, ``frm`` and ``term``. A ``term`` of 0 marks a local message (a
forwarded proposal or read request), which does not take part in term comparisons. The union
``Message`` is tagged, so ``msgspec`` encodes and decodes it without pickle; handlers dispatch with
``match`` and close with ``assert_never``.
"""

from __future__ import annotations

from typing import Final

import msgspec

from raftkv.raft.types import Entry, Snapshot


class _Base(msgspec.Struct, frozen=True, array_like=True, tag=True, kw_only=True, gc=False):
    to: int
    frm: int
    term: int


class AppendEntries(_Base, frozen=True, kw_only=True, tag="app"):
    """Raft §5.3: ``entries`` follow the entry at (``index``, ``log_term``)."""

    log_term: int
    index: int
    entries: tuple[Entry, ...] = ()
    commit: int = 0


class AppendResponse(_Base, frozen=True, kw_only=True, tag="app_resp"):
    """On success ``index`` is the last index the follower now matches. On rejection ``index`` is
    the rejected AppendEntries' index, ``reject_hint`` the follower's guess of the highest index
    that may match and ``log_term`` the follower's term at that index (fast backtracking)."""

    index: int
    reject: bool = False
    reject_hint: int = 0
    log_term: int = 0


class RequestVote(_Base, frozen=True, kw_only=True, tag="vote"):
    """Raft §5.2 / thesis §9.6 when ``pre``. ``transfer`` marks a campaign ordered by leadership
    transfer (thesis §3.10), which must not be ignored by followers that still hear a leader."""

    pre: bool
    last_index: int
    last_term: int
    transfer: bool = False


class VoteResponse(_Base, frozen=True, kw_only=True, tag="vote_resp"):
    pre: bool
    reject: bool


class Heartbeat(_Base, frozen=True, kw_only=True, tag="hb"):
    """The leader's heartbeat: ``commit`` is min(leader commit, follower match)."""

    commit: int = 0
    ctx: bytes = b""


class HeartbeatResponse(_Base, frozen=True, kw_only=True, tag="hb_resp"):
    ctx: bytes = b""


class InstallSnapshot(_Base, frozen=True, kw_only=True, tag="snap"):
    """Raft §7: sent when the entries a follower needs were compacted."""

    snapshot: Snapshot


class TimeoutNow(_Base, frozen=True, kw_only=True, tag="timeout_now"):
    """Thesis §3.10: the transferee starts an election at once."""


class Propose(_Base, frozen=True, kw_only=True, tag="prop"):
    """Proposals a follower forwards to its leader (term 0: local)."""

    entries: tuple[Entry, ...]


class ReadIndex(_Base, frozen=True, kw_only=True, tag="read"):
    """A follower's read request forwarded to the leader (term 0: local)."""

    ctx: bytes


class ReadIndexResponse(_Base, frozen=True, kw_only=True, tag="read_resp"):
    """The leader's answer to a forwarded ReadIndex; ``index`` 0 means it could not serve it."""

    index: int
    ctx: bytes


Message = (
    AppendEntries
    | AppendResponse
    | RequestVote
    | VoteResponse
    | Heartbeat
    | HeartbeatResponse
    | InstallSnapshot
    | TimeoutNow
    | Propose
    | ReadIndex
    | ReadIndexResponse
)

MESSAGE_TYPES: Final = (
    AppendEntries,
    AppendResponse,
    RequestVote,
    VoteResponse,
    Heartbeat,
    HeartbeatResponse,
    InstallSnapshot,
    TimeoutNow,
    Propose,
    ReadIndex,
    ReadIndexResponse,
)

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)


def encode_message(m: Message) -> bytes:
    """Encode one message with msgpack (the wire and trace codec)."""
    return _encoder.encode(m)


def decode_message(data: bytes) -> Message:
    """Decode one message; raises ``msgspec.DecodeError`` / ``ValidationError`` on bad bytes."""
    return _decoder.decode(data)


def kind(m: Message) -> str:
    """The short tag of a message kind, e.g. ``"app"`` or ``"vote_resp"``."""
    return m.__struct_config__.tag  # type: ignore[return-value]
