"""Errors of ``raftkv.client`` besides the typed KV errors (``raftkv.kv.errors``), which the
client raises as the server raised them, with etcd's messages.

::

    ClientError             base of the errors below
    ├── ConnectionFailed    no endpoint could be reached, or a connection broke / was refused
    └── Timeout             the command did not complete within ``command_timeout``
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of the client's own errors (not KV errors)."""


class ConnectionFailed(ClientError):
    """No endpoint answered, or the connection was lost or closed by the server."""


class Timeout(ClientError):
    """The command did not complete within the command timeout (it may still be applied)."""

    def __init__(self, message: str = "context deadline exceeded") -> None:
        super().__init__(message)
