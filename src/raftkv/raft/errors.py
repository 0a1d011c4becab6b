"""Errors raised by the Raft core.

::

    RaftError                     API misuse or an impossible request
    ├── ConfigError               an invalid Config
    ├── ProposalDropped           a proposal the node cannot accept (no leader, transfer in progress)
    └── StorageError              raised by a Storage implementation
        ├── Compacted             the requested index is below the first retained index
        ├── Unavailable           the requested index is beyond the last index
        └── SnapshotTemporarilyUnavailable  the snapshot is being built; retry later

A message the core refuses (from an unknown node, inconsistent fields) raises nothing: it is
dropped and counted in ``Status.dropped_messages``.
"""

from __future__ import annotations


class RaftError(Exception):
    """Base class of every error the core raises."""


class ConfigError(RaftError):
    """The Config is invalid; the message names the field."""


class ProposalDropped(RaftError):
    """The proposal was not appended: there is no known leader, or leadership is moving."""


class StorageError(RaftError):
    """Base class of the errors a Storage raises."""


class Compacted(StorageError):
    """The requested index was compacted away into a snapshot."""


class Unavailable(StorageError):
    """The requested index is not in the log (yet)."""


class SnapshotTemporarilyUnavailable(StorageError):
    """The storage cannot produce a snapshot right now; the leader retries later."""
