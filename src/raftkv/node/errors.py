"""Errors of the node host.

::

    NodeError
    ├── NotLeaderError     no leader is known, or leadership is moving: retry (elsewhere)
    ├── NodeStopped        the node is shutting down or has stopped
    └── StorageFailed      the disk refused a write (fsync failure, ENOSPC): the node stopped
"""

from __future__ import annotations


class NodeError(Exception):
    pass


class NotLeaderError(NodeError):
    pass


class NodeStopped(NodeError):
    pass


class StorageFailed(NodeError):
    pass
