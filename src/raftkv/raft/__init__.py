"""raftkv.raft: a pure, deterministic Raft core (no I/O, no clock, no threads).

See ``raftkv.raft.rawnode`` for the host loop and ``raftkv.raft.host`` for the Ready contract.
"""

from raftkv.raft.config import Config
from raftkv.raft.errors import (
    Compacted,
    ConfigError,
    ProposalDropped,
    RaftError,
    SnapshotTemporarilyUnavailable,
    StorageError,
    Unavailable,
)
from raftkv.raft.host import Apply, Persist, Send, plan
from raftkv.raft.messages import Message, decode_message, encode_message
from raftkv.raft.progress import ProgressState
from raftkv.raft.rawnode import PeerStatus, RawNode, Ready, Status
from raftkv.raft.storage import HostStorage, MemoryStorage, Storage
from raftkv.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    ReadState,
    Role,
    Snapshot,
    SnapshotMeta,
    SoftState,
)

__all__ = [
    "Apply",
    "Compacted",
    "ConfState",
    "Config",
    "ConfigError",
    "Entry",
    "EntryType",
    "HardState",
    "HostStorage",
    "MemoryStorage",
    "Message",
    "PeerStatus",
    "Persist",
    "ProgressState",
    "ProposalDropped",
    "RaftError",
    "RawNode",
    "ReadState",
    "Ready",
    "Role",
    "Send",
    "Snapshot",
    "SnapshotMeta",
    "SnapshotTemporarilyUnavailable",
    "SoftState",
    "Status",
    "Storage",
    "StorageError",
    "Unavailable",
    "decode_message",
    "encode_message",
    "plan",
]
