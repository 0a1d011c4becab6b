"""``PeerTransport``: Raft messages between members over asyncio TCP.

Theory of operation:

- Each member listens on its peer address and dials each peer it sends to: a connection carries
  messages one way, from dialer to listener (after the handshake of ``handshake.py``).
- ``send`` never awaits: it appends each message to its peer's bounded outbound queue and wakes
  that peer's writer task. When the queue is full the oldest message is dropped, counted and
  ``report_unreachable`` called (Raft retransmits, as with etcd's full buffers).
- The writer task takes *everything* pending at once and writes it as few ``MESSAGES`` frames as
  the frame limit allows, in one write call: under load, one syscall carries many messages.
  When the writer is idle on a healthy connection, ``send`` itself writes (the same way), which
  saves a task wake-up on every message's path.
- An ``InstallSnapshot`` is streamed in order with the other messages as ``SNAP_BEGIN`` and
  ``SNAP_CHUNK`` frames of at most one frame each; ``on_snapshot_status(to, ok)`` is called once
  it is written (ok) or once it cannot be (dropped, connection failed).
- A writer that cannot connect or write calls ``report_unreachable`` and retries with jittered
  exponential backoff (own seeded ``random.Random``); the queue is kept, bounded, meanwhile.
- The listener reads frames with ``FrameDecoder``; an oversized or malformed frame, bad magic or
  a refused hello closes that connection with a one-line log message; the server keeps serving.
- ``drop_peers`` / ``heal`` is the debug fault hook: traffic to and from the named peers is
  discarded in both directions until healed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from raftkv.raft.messages import InstallSnapshot, Message, encode_message
from raftkv.transport import handshake
from raftkv.transport.api import Address, PeerStats
from raftkv.transport.errors import FrameError, HandshakeError, TransportError
from raftkv.transport.framing import (
    DEFAULT_MAX_FRAME,
    HEADER_LEN,
    PEER_FRAME_TYPES,
    Frame,
    FrameDecoder,
    FrameType,
    SnapshotAssembler,
    decode_messages,
    encode_frame,
    encode_frame_header,
    message_frames,
    snapshot_begin_payload,
)

logger = logging.getLogger("raftkv.transport")

DEFAULT_MAX_QUEUE = 4096
DEFAULT_MAX_SNAPSHOT = 1 << 34
_READ_SIZE = 1 << 20
_MSG_OVERHEAD = 5  # msgpack array header of a MESSAGES payload, at most
_DIRECT_WRITE_MAX_BUFFER = 64 << 10  # send() writes at once only below this much unsent


class _Peer:
    """Outbound state of one peer: its queue, writer task and connection."""

    __slots__ = ("addr", "id", "idle", "queue", "reachable", "reader", "task", "wake", "writer")

    def __init__(self, peer_id: int, addr: Address) -> None:
        self.id = peer_id
        self.addr = addr
        self.queue: deque[Message] = deque()
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reachable = True
        self.idle = False  # the writer task is parked on an empty queue

    def connected(self) -> bool:
        return (
            self.writer is not None
            and self.reader is not None
            and not self.writer.is_closing()
            and not self.reader.at_eof()  # the listener never writes after its hello answer
        )

    def disconnect(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class PeerTransport:
    """Sends and receives Raft messages for member ``self_id`` of cluster ``cluster_id``.

    Args:
        self_id: this member's id.
        cluster_id: the cluster's id; connections from another cluster are refused.
        peers: the other members' peer addresses (host, port); more with ``add_peer``.
        on_message: called with each message received, in order per peer, on the event loop.
        report_unreachable: called with a peer id when sending to it failed or was dropped.
        on_snapshot_status: called with (peer id, ok) once an InstallSnapshot was fully written
            (True) or could not be (False).
        max_frame_size: the largest frame payload sent or accepted.
        max_queue: the bound of each peer's outbound queue.
        max_snapshot_size: the largest snapshot data accepted from a peer.
        backoff_min, backoff_max: reconnect delays in seconds (doubling, jittered).
        connect_timeout: seconds allowed to connect and complete a handshake.
        rng: the random source of the backoff jitter (seed it for reproducible runs).
    """

    def __init__(
        self,
        self_id: int,
        cluster_id: int,
        peers: Mapping[int, Address],
        on_message: Callable[[Message], None],
        *,
        report_unreachable: Callable[[int], None] | None = None,
        on_snapshot_status: Callable[[int, bool], None] | None = None,
        max_frame_size: int = DEFAULT_MAX_FRAME,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_snapshot_size: int = DEFAULT_MAX_SNAPSHOT,
        backoff_min: float = 0.05,
        backoff_max: float = 2.0,
        connect_timeout: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        if max_frame_size <= 64:
            raise ValueError("max_frame_size must be more than 64 bytes")
        if max_queue <= 0:
            raise ValueError("max_queue must be positive")
        self.self_id = self_id
        self.cluster_id = cluster_id
        self.max_frame_size = max_frame_size
        self.max_queue = max_queue
        self.max_snapshot_size = max_snapshot_size
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self._on_message = on_message
        self._report_unreachable = report_unreachable
        self._on_snapshot_status = on_snapshot_status
        self._rng = rng if rng is not None else random.Random()
        self._peers: dict[int, _Peer] = {}
        self._stats: dict[int, PeerStats] = {}
        self._blocked: set[int] = set()
        self._server: asyncio.Server | None = None
        self._inbound: set[asyncio.Task[None]] = set()
        self._inbound_writers: set[asyncio.StreamWriter] = set()
        self._started = False
        self._closed = False
        self.address: Address | None = None
        """The listening address once started (the real port when started on port 0)."""
        for peer_id, addr in peers.items():
            self.add_peer(peer_id, addr)

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str, port: int) -> None:
        """Listen for peers on (host, port); port 0 picks a free port (see ``address``)."""
        if self._started:
            raise RuntimeError("transport already started")
        self._server = await asyncio.start_server(self._serve, host, port, limit=_READ_SIZE)
        sockname = self._server.sockets[0].getsockname()
        self.address = (sockname[0], sockname[1])
        self._started = True
        for peer in self._peers.values():
            self._start_writer(peer)
        logger.info("node %d: listening for peers on %s:%d", self.self_id, *self.address)

    async def stop(self) -> None:
        """Stop listening, close every connection and end every task. Queued messages are lost."""
        if self._closed:
            return
        self._closed = True
        if self._server is not None:
            self._server.close()
        tasks: list[asyncio.Task[None]] = []
        for peer in self._peers.values():
            if peer.task is not None:
                peer.task.cancel()
                tasks.append(peer.task)
            peer.disconnect()
        for w in self._inbound_writers:
            w.close()
        for t in self._inbound:
            t.cancel()
            tasks.append(t)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # ---------------------------------------------------------------- membership

    def add_peer(self, peer_id: int, addr: Address) -> None:
        """Add a peer, or change its address (an open connection to the old one is closed)."""
        if peer_id == self.self_id:
            return
        self._stats.setdefault(peer_id, PeerStats())
        peer = self._peers.get(peer_id)
        if peer is not None:
            if peer.addr != addr:
                peer.addr = addr
                peer.disconnect()
            return
        peer = self._peers[peer_id] = _Peer(peer_id, addr)
        if self._started and not self._closed:
            self._start_writer(peer)

    def remove_peer(self, peer_id: int) -> None:
        """Forget a peer: its queue is dropped and its connection closed."""
        peer = self._peers.pop(peer_id, None)
        if peer is None:
            return
        if peer.task is not None:
            peer.task.cancel()
        peer.disconnect()
        self._drop_queue(peer)

    @property
    def peers(self) -> dict[int, Address]:
        return {p.id: p.addr for p in self._peers.values()}

    # ---------------------------------------------------------------- sending

    def send(self, messages: Iterable[Message]) -> None:
        """Queue messages for their peers (``m.to``). Never blocks, never raises for a peer.

        A peer whose writer is idle on a healthy connection gets its messages written in this
        call (one write per peer per call), saving the writer task's wake-up on the latency
        path; otherwise the writer task takes them.
        """
        idle: list[_Peer] = []
        for m in messages:
            peer = self._peers.get(m.to)
            if peer is None or self._closed:
                logger.debug(
                    "node %d: dropped %s to unknown member %d", self.self_id, type(m).__name__, m.to
                )
                self._dropped(m.to, m)
                continue
            if m.to in self._blocked:
                self._dropped(m.to, m)
                continue
            if len(peer.queue) >= self.max_queue:
                # etcd drops when a peer's buffer is full; Raft retransmits what matters.
                self._dropped(m.to, peer.queue.popleft())
                self._unreachable(m.to)
            peer.queue.append(m)
            if peer.idle:
                if peer not in idle:
                    idle.append(peer)
            else:
                peer.wake.set()
        for peer in idle:
            self._write_now(peer)

    def stats(self) -> dict[int, PeerStats]:
        """A copy of the counters of every peer ever known, by peer id."""
        return {pid: dataclasses.replace(s) for pid, s in self._stats.items()}

    # ---------------------------------------------------------------- fault injection

    def drop_peers(self, ids: Iterable[int]) -> None:
        """Debug hook: discard traffic to and from ``ids`` (both directions) until ``heal``."""
        new = set(ids) - {self.self_id}
        self._blocked |= new
        for pid in new:
            peer = self._peers.get(pid)
            if peer is not None:
                self._drop_queue(peer)
        logger.warning(
            "node %d: fault injection: dropping traffic with %s",
            self.self_id,
            sorted(self._blocked),
        )

    def heal(self) -> None:
        """Debug hook: end every ``drop_peers``."""
        if self._blocked:
            logger.warning("node %d: fault injection healed", self.self_id)
        self._blocked.clear()

    # ---------------------------------------------------------------- internals: callbacks

    def _peer_stats(self, peer_id: int) -> PeerStats:
        s = self._stats.get(peer_id)
        if s is None:
            s = self._stats[peer_id] = PeerStats()
        return s

    def _unreachable(self, peer_id: int) -> None:
        if self._report_unreachable is None or self._closed:
            return
        try:
            self._report_unreachable(peer_id)
        except Exception:
            logger.exception("node %d: report_unreachable(%d) failed", self.self_id, peer_id)

    def _snapshot_status(self, peer_id: int, ok: bool) -> None:
        s = self._peer_stats(peer_id)
        if ok:
            s.snapshots_sent += 1
        else:
            s.snapshots_failed += 1
        if self._on_snapshot_status is None or self._closed:
            return
        try:
            self._on_snapshot_status(peer_id, ok)
        except Exception:
            logger.exception("node %d: on_snapshot_status(%d) failed", self.self_id, peer_id)

    def _dropped(self, peer_id: int, m: Message) -> None:
        self._peer_stats(peer_id).dropped += 1
        if isinstance(m, InstallSnapshot):
            self._snapshot_status(peer_id, False)

    def _drop_queue(self, peer: _Peer) -> None:
        while peer.queue:
            self._dropped(peer.id, peer.queue.popleft())

    # ---------------------------------------------------------------- internals: writer

    def _start_writer(self, peer: _Peer) -> None:
        peer.task = asyncio.create_task(self._run_writer(peer), name=f"raftkv-peer-{peer.id}")

    def _write_now(self, peer: _Peer) -> None:
        """Write ``peer``'s queue in this call when its writer task is idle, connected, not
        held back by a full socket buffer and there is no snapshot to stream; else wake it."""
        writer = peer.writer
        if (
            writer is None
            or not peer.connected()
            or writer.transport.get_write_buffer_size() > _DIRECT_WRITE_MAX_BUFFER
            or any(isinstance(m, InstallSnapshot) for m in peer.queue)
        ):
            peer.wake.set()
            return
        batch = list(peer.queue)
        peer.queue.clear()
        encoded = self._encode(peer, batch)
        if not encoded:
            return
        try:
            frames, size = self._write_encoded(peer, encoded)
            if writer.is_closing():  # a failed send closes the transport; write() raises nothing
                raise ConnectionResetError("the connection closed during the write")
        except (OSError, TransportError) as e:
            self._peer_stats(peer.id).dropped += len(encoded)
            self._lost(peer, e)
            return
        self._count_sent(peer, len(encoded), frames, size)

    async def _run_writer(self, peer: _Peer) -> None:
        backoff = self.backoff_min
        try:
            while True:
                if not peer.queue:
                    peer.wake.clear()
                    peer.idle = True
                    try:
                        await peer.wake.wait()
                    finally:
                        peer.idle = False
                    continue
                if not peer.connected():
                    peer.disconnect()
                    if not await self._connect(peer):
                        self._peer_stats(peer.id).connect_failures += 1
                        self._unreachable(peer.id)
                        # A snapshot cannot wait for a peer that is down: Raft will retry it.
                        for m in [m for m in peer.queue if isinstance(m, InstallSnapshot)]:
                            peer.queue.remove(m)
                            self._dropped(peer.id, m)
                        delay = backoff * (0.5 + 0.5 * self._rng.random())
                        backoff = min(backoff * 2, self.backoff_max)
                        await asyncio.sleep(delay)
                        continue
                    backoff = self.backoff_min
                batch = list(peer.queue)
                peer.queue.clear()
                try:
                    await self._write_batch(peer, batch)
                except (OSError, TransportError) as e:
                    self._lost(peer, e)
                except Exception:  # a bug: log it, keep this peer's writer alive
                    logger.exception("node %d: writing to peer %d failed", self.self_id, peer.id)
                    peer.disconnect()
                    self._unreachable(peer.id)
        finally:
            peer.disconnect()

    def _lost(self, peer: _Peer, e: Exception) -> None:
        logger.warning(
            "node %d: lost connection to peer %d at %s:%d: %s", self.self_id, peer.id, *peer.addr, e
        )
        peer.reachable = False
        peer.disconnect()
        self._unreachable(peer.id)

    async def _connect(self, peer: _Peer) -> bool:
        host, port = peer.addr
        hello = handshake.Hello(handshake.PROTOCOL_VERSION, self.cluster_id, self.self_id, peer.id)
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=_READ_SIZE)
                await handshake.dial(reader, writer, hello)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, TransportError) as e:
            if writer is not None:
                writer.close()
            level = (
                logging.WARNING
                if peer.reachable or isinstance(e, HandshakeError)
                else (logging.DEBUG)
            )
            logger.log(
                level,
                "node %d: cannot reach peer %d at %s:%d: %s",
                self.self_id,
                peer.id,
                host,
                port,
                str(e) or type(e).__name__,
            )
            peer.reachable = False
            return False
        peer.reader, peer.writer = reader, writer
        peer.reachable = True
        s = self._peer_stats(peer.id)
        s.connects += 1
        if s.connects > 1:
            s.reconnects += 1
        logger.info("node %d: connected to peer %d at %s:%d", self.self_id, peer.id, host, port)
        return True

    async def _write_batch(self, peer: _Peer, batch: list[Message]) -> None:
        """Write ``batch`` in order: runs of messages as one write, snapshots streamed."""
        run: list[Message] = []
        unsent_from = 0  # batch[unsent_from:] holds the snapshots not yet reported
        try:
            for i, m in enumerate(batch):
                if isinstance(m, InstallSnapshot):
                    await self._write_messages(peer, run)
                    run = []
                    await self._write_snapshot(peer, m)
                    unsent_from = i + 1
                else:
                    run.append(m)
            await self._write_messages(peer, run)
        except BaseException:
            for m in batch[unsent_from:]:
                if isinstance(m, InstallSnapshot):
                    self._snapshot_status(peer.id, False)
            raise

    def _encode(self, peer: _Peer, messages: list[Message]) -> list[bytes]:
        """Encode ``messages`` (no snapshots), dropping those blocked or larger than a frame."""
        encoded: list[bytes] = []
        for m in messages:
            if m.to in self._blocked:
                self._dropped(peer.id, m)
                continue
            enc = encode_message(m)
            if len(enc) + _MSG_OVERHEAD > self.max_frame_size:
                logger.warning(
                    "node %d: dropped %s of %d bytes to peer %d: larger than the "
                    "maximum frame size %d",
                    self.self_id,
                    type(m).__name__,
                    len(enc),
                    peer.id,
                    self.max_frame_size,
                )
                self._dropped(peer.id, m)
                continue
            encoded.append(enc)
        return encoded

    async def _write_messages(self, peer: _Peer, messages: list[Message]) -> None:
        encoded = self._encode(peer, messages)
        if not encoded:
            return
        assert peer.writer is not None
        try:
            frames, size = self._write_encoded(peer, encoded)
            await peer.writer.drain()
        except BaseException:
            self._peer_stats(peer.id).dropped += len(encoded)
            raise
        self._count_sent(peer, len(encoded), frames, size)

    def _write_encoded(self, peer: _Peer, encoded: list[bytes]) -> tuple[int, int]:
        """One write of ``encoded`` into the socket's buffer; (frames, bytes) written. Whether
        it went out is the caller's to find out (drain, or the transport closing)."""
        assert peer.writer is not None
        frames = message_frames(encoded, self.max_frame_size)
        data = b"".join(frames)
        peer.writer.write(data)
        return len(frames), len(data)

    def _count_sent(self, peer: _Peer, messages: int, frames: int, size: int) -> None:
        s = self._peer_stats(peer.id)
        s.writes += 1
        s.frames_sent += frames
        s.messages_sent += messages
        s.bytes_sent += size

    async def _write_snapshot(self, peer: _Peer, m: InstallSnapshot) -> None:
        writer = peer.writer
        assert writer is not None
        if m.to in self._blocked:
            self._dropped(peer.id, m)
            return
        begin = snapshot_begin_payload(m)
        if len(begin) > self.max_frame_size:
            logger.warning(
                "node %d: dropped snapshot to peer %d: its header is larger than the "
                "maximum frame size",
                self.self_id,
                peer.id,
            )
            self._dropped(peer.id, m)
            return
        s = self._peer_stats(peer.id)
        writer.write(encode_frame(FrameType.SNAP_BEGIN, begin))
        sent = HEADER_LEN + len(begin)
        data = memoryview(m.snapshot.data)
        step = self.max_frame_size
        for off in range(0, len(data), step):
            chunk = data[off : off + step]
            writer.write(encode_frame_header(FrameType.SNAP_CHUNK, len(chunk)))
            writer.write(chunk)
            await writer.drain()  # one chunk in flight: memory stays bounded
            s.writes += 1
            s.frames_sent += 1
            sent += HEADER_LEN + len(chunk)
        await writer.drain()
        s.frames_sent += 1
        s.messages_sent += 1
        s.bytes_sent += sent
        if not data:
            s.writes += 1
        self._snapshot_status(peer.id, True)

    # ---------------------------------------------------------------- internals: listener

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._inbound.add(task)
        self._inbound_writers.add(writer)
        peername = writer.get_extra_info("peername")
        where = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        try:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    hello = await handshake.accept(
                        reader,
                        writer,
                        cluster_id=self.cluster_id,
                        self_id=self.self_id,
                        members=self._peers,
                    )
            except (HandshakeError, FrameError) as e:
                logger.warning(
                    "node %d: refused peer connection from %s: %s", self.self_id, where, e
                )
                return
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as e:
                logger.warning(
                    "node %d: peer connection from %s closed during the handshake: %s",
                    self.self_id,
                    where,
                    str(e) or type(e).__name__,
                )
                return
            peer_id = hello.frm
            logger.info("node %d: accepted peer %d from %s", self.self_id, peer_id, where)
            try:
                await self._receive(peer_id, reader)
            except FrameError as e:
                logger.warning(
                    "node %d: closed connection from peer %d (%s): %s",
                    self.self_id,
                    peer_id,
                    where,
                    e,
                )
            except OSError as e:
                logger.info(
                    "node %d: connection from peer %d (%s) failed: %s",
                    self.self_id,
                    peer_id,
                    where,
                    e,
                )
        except asyncio.CancelledError:
            pass  # stop(): end the connection task quietly (the server's callback checks it)
        finally:
            writer.close()
            self._inbound_writers.discard(writer)
            self._inbound.discard(task)

    async def _receive(self, peer_id: int, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder(self.max_frame_size, PEER_FRAME_TYPES)
        assembler = SnapshotAssembler(self.max_snapshot_size)
        while True:
            data = await reader.read(_READ_SIZE)
            if not data:
                return
            for frame in decoder.feed(data):
                self._handle_frame(peer_id, frame, assembler)

    def _handle_frame(self, peer_id: int, frame: Frame, assembler: SnapshotAssembler) -> None:
        self._peer_stats(peer_id).bytes_received += HEADER_LEN + len(frame.payload)
        if frame.type == FrameType.MESSAGES:
            for m in decode_messages(frame.payload):
                self._deliver(peer_id, m)
            return
        if frame.type == FrameType.SNAP_BEGIN:
            snap = assembler.begin(frame.payload)
        elif frame.type == FrameType.SNAP_CHUNK:
            snap = assembler.chunk(frame.payload)
        else:
            raise FrameError(f"unexpected frame type 0x{frame.type:02x} after the handshake")
        if snap is not None:
            self._peer_stats(peer_id).snapshots_received += 1
            self._deliver(peer_id, snap)

    def _deliver(self, peer_id: int, m: Message) -> None:
        if m.frm != peer_id or m.to != self.self_id:
            raise FrameError(
                f"message from {m.frm} to {m.to} on the connection from "
                f"peer {peer_id} to {self.self_id}"
            )
        s = self._peer_stats(peer_id)
        if peer_id in self._blocked:
            s.dropped_received += 1
            return
        s.messages_received += 1
        try:
            self._on_message(m)
        except Exception:
            logger.exception(
                "node %d: on_message failed for %s from peer %d",
                self.self_id,
                type(m).__name__,
                peer_id,
            )
