"""raftkv.transport: frames, the peer handshake, and the transports that carry Raft messages.

- ``framing``: length-prefixed frames, the sans-IO ``FrameDecoder``, connection magics.
- ``handshake``: the peer hello (version, cluster id, member ids).
- ``peer``: ``PeerTransport``, asyncio TCP with per-peer batching queues, reconnect and
  snapshot streaming.
- ``memory``: ``MemoryTransport``, the in-process twin for ``raftkv.node`` unit tests.
"""

from raftkv.transport.api import Address, PeerStats, Transport
from raftkv.transport.errors import FrameError, FrameTooLarge, HandshakeError, TransportError
from raftkv.transport.framing import (
    CLIENT_MAGIC,
    DEFAULT_MAX_FRAME,
    PEER_MAGIC,
    Frame,
    FrameDecoder,
    FrameType,
    encode_frame,
)
from raftkv.transport.handshake import PROTOCOL_VERSION, Hello
from raftkv.transport.memory import MemoryNetwork, MemoryTransport
from raftkv.transport.peer import PeerTransport

__all__ = [
    "CLIENT_MAGIC",
    "DEFAULT_MAX_FRAME",
    "PEER_MAGIC",
    "PROTOCOL_VERSION",
    "Address",
    "Frame",
    "FrameDecoder",
    "FrameError",
    "FrameTooLarge",
    "FrameType",
    "HandshakeError",
    "Hello",
    "MemoryNetwork",
    "MemoryTransport",
    "PeerStats",
    "PeerTransport",
    "Transport",
    "TransportError",
    "encode_frame",
]
