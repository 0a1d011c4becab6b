"""raftkv.client: Python clients of raftkv's native protocol.

- ``AsyncClient`` (asyncio) and ``Client`` (blocking, its own loop in a background thread):
  pipelined over one connection, endpoint failover, exactly-once writes through sessions.
- Errors: the server's typed ``raftkv.kv`` errors with etcd's messages, plus
  ``ConnectionFailed`` and ``Timeout``.
"""

from raftkv.client.aio import AsyncClient, Watcher, parse_endpoint, prefix_end
from raftkv.client.errors import ClientError, ConnectionFailed, Timeout
from raftkv.client.sync import Client, SyncWatcher

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "ConnectionFailed",
    "SyncWatcher",
    "Timeout",
    "Watcher",
    "parse_endpoint",
    "prefix_end",
]
