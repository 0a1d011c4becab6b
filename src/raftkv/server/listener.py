"""``ClientListener``: one client port for every protocol, told apart by the first bytes.

Each accepted connection starts with a ``_Sniffer`` protocol that buffers the first bytes and
hands the connection over (``transport.set_protocol(p); p.connection_made(transport);
p.data_received(buffered)``), as etcd's cmux does:

- ``RKVC`` (``raftkv.transport.CLIENT_MAGIC``) → ``raftkv.server.native.NativeProtocol``;
- ``PRI * HTTP/2.0`` (the HTTP/2 preface) → etcd's v3 gRPC API: the grpclib server's HTTP/2
  protocol (``raftkv.server.grpc.EtcdGrpc``, imported on first use);
- anything else → HTTP/1.x, served by aiohttp's low-level server (``HttpApi.handle``).

A connection that sends nothing recognisable within ``sniff_timeout`` seconds is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, cast

from aiohttp import web

from raftkv.server.http import HttpApi
from raftkv.server.service import KVService
from raftkv.transport import CLIENT_MAGIC

log = logging.getLogger("raftkv.server")

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_SNIFF_LEN = 4  # every prefix told apart here is decided by its first 4 bytes


class _Sniffer(asyncio.Protocol):
    def __init__(self, listener: ClientListener) -> None:
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.timer: asyncio.TimerHandle | None = None
        self.handed_over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's do not subclass asyncio.Transport)
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.timer = asyncio.get_running_loop().call_later(
            self.listener.sniff_timeout, self._timeout
        )

    def _timeout(self) -> None:
        if not self.handed_over and self.transport is not None:
            log.debug("client connection sent nothing recognisable in time; closing it")
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head = bytes(self.buf[:_SNIFF_LEN])
        kinds = (CLIENT_MAGIC, H2_PREFACE[:_SNIFF_LEN])
        if len(head) < _SNIFF_LEN and any(k.startswith(head) for k in kinds):
            return  # too short to tell yet
        if self.timer is not None:
            self.timer.cancel()
        self.handed_over = True
        assert self.transport is not None
        self.listener._dispatch(self.transport, head, bytes(self.buf))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


class ClientListener:
    """Serves ``service`` on the client port.

    Args:
        service: the KV service.
        http: the HTTP API (``HttpApi``) of this member.
        sniff_timeout: seconds a new connection has to send its first bytes.
        native_factory: builds the native protocol for a connection (default: a
            ``raftkv.server.native.NativeProtocol(service)``, imported on first use).
    """

    def __init__(
        self,
        service: KVService,
        http: HttpApi,
        *,
        sniff_timeout: float = 10.0,
        native_factory: Any = None,
    ) -> None:
        self.service = service
        self.http = http
        self.sniff_timeout = sniff_timeout
        self._native_factory = native_factory
        self._native_missing = False
        self._server: asyncio.Server | None = None
        self._web: web.Server | None = None
        self._native: set[asyncio.Transport] = set()
        self._grpc: Any = None
        self._grpc_missing = False
        self.address: tuple[str, int] | None = None

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
    ) -> None:
        """Listen on (host, port), or on an already bound listening ``sock``.

        Raises:
            OSError: the address is taken or cannot be bound.
        """
        loop = asyncio.get_running_loop()
        self._web = web.Server(self.http.handle, loop=loop, access_log=None)  # no per-request log
        if sock is not None:
            self._server = await loop.create_server(lambda: _Sniffer(self), sock=sock)
        else:
            self._server = await loop.create_server(lambda: _Sniffer(self), host, port)
        name = self._server.sockets[0].getsockname()
        self.address = (name[0], name[1])
        log.info("serving clients on %s:%d", *self.address)

    def _dispatch(self, transport: asyncio.Transport, head: bytes, buffered: bytes) -> None:
        if head == CLIENT_MAGIC:
            proto = self._make_native()
            if proto is None:
                transport.close()
                return
            self._native.add(transport)
        elif head == H2_PREFACE[:_SNIFF_LEN]:
            grpc_proto = self._make_grpc()
            if grpc_proto is None:
                transport.close()
                return
            proto = grpc_proto
        else:
            assert self._web is not None
            proto = self._web()
        transport.set_protocol(proto)
        proto.connection_made(transport)
        proto.data_received(buffered)

    def _make_native(self) -> asyncio.Protocol | None:
        if self._native_factory is None and not self._native_missing:
            try:
                from raftkv.server.native import NativeProtocol
            except ImportError as e:
                log.warning("the native client protocol is not available: %s", e)
                self._native_missing = True
            else:
                self._native_factory = NativeProtocol
        if self._native_factory is None:
            return None
        proto: asyncio.Protocol = self._native_factory(self.service)
        return proto

    def _make_grpc(self) -> asyncio.Protocol | None:
        if self._grpc is None and not self._grpc_missing:
            try:
                from raftkv.server.grpc import EtcdGrpc
            except ImportError as e:
                log.warning("etcd's gRPC API is not available: %s", e)
                self._grpc_missing = True
            else:
                self._grpc = EtcdGrpc(self.service, db_size=self.http.db_size)
        if self._grpc is None:
            return None
        proto: asyncio.Protocol = self._grpc.protocol()
        return proto

    async def stop_accepting(self) -> None:
        """Stop accepting connections; open ones go on."""
        if self._server is not None:
            self._server.close()

    async def close(self, timeout: float = 2.0) -> None:
        """Stop accepting, give in-flight HTTP requests ``timeout`` seconds, close everything."""
        await self.stop_accepting()
        await self.http.close()
        if self._web is not None:
            with contextlib.suppress(Exception):
                await self._web.shutdown(timeout)
        for t in list(self._native):
            t.close()
        self._native.clear()
        if self._grpc is not None:
            await self._grpc.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
