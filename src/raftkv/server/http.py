"""The HTTP/1.x face of the client port: ``HttpApi.handle`` is an aiohttp low-level handler.

Endpoints (every error is a one-line JSON object ``{"error": ...}``; the server keeps serving):

- ``GET /version`` → ``{"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}`` (etcd's shape).
- ``GET /health`` → ``{"health": "true"}``; ``{"health": "false", ...}`` with 503 without a leader.
- ``GET /metrics`` → Prometheus text format (written by hand, no dependency).
- ``GET /raftkv/v1/status`` → the member's status as JSON (see ``status``).
- ``GET /raftkv/v1/events`` → Server-Sent Events, one ``data:`` line per event (``EventHub``).
- ``POST /raftkv/v1/debug/partition`` ``{"drop": [member ids]}`` and
  ``POST /raftkv/v1/debug/heal``: the transport's fault hooks, only with fault injection on
  (else 404).
- ``POST /v3/...``: etcd 3.4's JSON gateway (``raftkv.server.gateway.EtcdGateway``: kv, watch,
  lease, cluster and maintenance calls; keys and values base64, int64 fields as strings,
  errors as grpc-gateway's ``{"error", "code", "message"}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from raftkv.kv import KVError, KVStateMachine
from raftkv.node import Role
from raftkv.server.events import EventHub
from raftkv.server.service import KVService
from raftkv.transport import Transport

log = logging.getLogger("raftkv.server.http")

ETCD_VERSION = {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}
MAX_BODY = 4 * 1024 * 1024
_DB_SIZE_CACHE_S = 5.0

_STATUS_OF_CODE = {
    "INVALID_ARGUMENT": 400,
    "OUT_OF_RANGE": 400,
    "FAILED_PRECONDITION": 412,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 413,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


class BadRequest(Exception):
    """A request the API cannot take; its message is the one-line answer."""


def _json(obj: object, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(obj, separators=(",", ":")) + "\n",
        status=status,
        content_type="application/json",
    )


def _error(message: str, status: int) -> web.Response:
    return _json({"error": " ".join(message.split())}, status)










class HttpApi:
    """Args:
    service: the member's KV service.
    transport: the peer transport (stats, and the fault hooks of the debug API).
    name: the member's name.
    fault_injection: serve the debug API (``--enable-fault-injection``).
    fsyncs: returns the WAL's fsync count so far, or None when unknown.
    """

    def __init__(
        self,
        service: KVService,
        transport: Transport | None,
        *,
        name: str = "",
        fault_injection: bool = False,
        fsyncs: Callable[[], int | None] | None = None,
    ) -> None:
        self.service = service
        self.node = service.node
        self.transport = transport
        self.name = name
        self.fault_injection = fault_injection
        self._fsyncs = fsyncs
        self.started_at = time.monotonic()
        self.events = EventHub(self.node, transport.stats if transport is not None else None)
        self.leader_changes = 0
        self._db_size = (0.0, 0)
        self._closing = asyncio.Event()
        self.node.on_soft_state.append(self._on_soft_state)
        self._routes: dict[tuple[str, str], Callable[[web.BaseRequest], Any]] = {
            ("GET", "/version"): self._version,
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/raftkv/v1/status"): self._status,
            ("GET", "/raftkv/v1/events"): self._events,
            ("POST", "/raftkv/v1/debug/partition"): self._partition,
            ("POST", "/raftkv/v1/debug/heal"): self._heal,
            ("POST", "/raftkv/v1/move-leader"): self._move_leader,
        }
        self.gateway: Any = None
        try:
            from raftkv.server.gateway import EtcdGateway
        except ImportError as e:  # grpclib / protobuf missing: no etcd JSON gateway
            log.warning("etcd's JSON gateway is not available: %s", e)
        else:
            self.gateway = EtcdGateway(service, db_size=self.db_size)
            for path, handler in self.gateway.routes().items():
                self._routes[("POST", path)] = handler

    def _on_soft_state(self, lead: int, role: Role, term: int) -> None:
        self.leader_changes += 1

    async def close(self) -> None:
        """End the event streams (they would otherwise hold a graceful shutdown up)."""
        self._closing.set()
        if self.gateway is not None:
            self.gateway.close()
        await self.events.close()

    # -- dispatch -------------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/raftkv/v1/debug/") and not self.fault_injection:
            return _error("not found (start the member with --enable-fault-injection)", 404)
        route = self._routes.get((request.method, path))
        if route is None:
            if any(p == path for _, p in self._routes):
                return _error(f"method {request.method} not allowed on {path}", 405)
            return _error(f"not found: {path}", 404)
        try:
            resp: web.StreamResponse = await route(request)
            return resp
        except BadRequest as e:
            return _error(str(e), 400)
        except KVError as e:
            return _error(e.message, _STATUS_OF_CODE.get(e.code, 500))
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception as e:
            log.exception("%s %s failed", request.method, path)
            return _error(f"internal error: {type(e).__name__}", 500)

    async def _body(self, request: web.BaseRequest) -> dict[str, Any]:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BadRequest(f"request body larger than {MAX_BODY} bytes")
        raw = await request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise BadRequest(f"request body larger than {MAX_BODY} bytes")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"request body is not JSON: {e}") from e
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        return body

    # -- plain endpoints ------------------------------------------------------------------------

    async def _version(self, request: web.BaseRequest) -> web.StreamResponse:
        return _json(ETCD_VERSION)

    async def _health(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.node.fatal is not None:
            return _json({"health": "false", "reason": "STORAGE FAILED"}, 503)
        if self.node.leader() == 0:
            return _json({"health": "false", "reason": "RAFT NO LEADER"}, 503)
        return _json({"health": "true"})

    def db_size(self) -> int:
        """The size of the state machine's snapshot image (recomputed at most every 5 s)."""
        at, size = self._db_size
        now = time.monotonic()
        if now - at > _DB_SIZE_CACHE_S:
            sm = self.service.sm
            size = len(sm.snapshot()) if isinstance(sm, KVStateMachine) else 0
            self._db_size = (now, size)
        return size

    def status(self) -> dict[str, object]:
        d = self.service.status()
        d["member_id"] = self.node.id
        d["name"] = self.name
        d["members"] = [
            {
                "id": m.id,
                "name": m.name,
                "peer_urls": list(m.peer_urls),
                "client_urls": list(m.client_urls),
            }
            for m in self.service.members()
        ]
        d["uptime_s"] = round(time.monotonic() - self.started_at, 3)
        d["db_size"] = self.db_size()
        d["revision"] = self.service.sm.revision
        d["version"] = ETCD_VERSION["etcdserver"]
        d["fault_injection"] = self.fault_injection
        return d

    async def _status(self, request: web.BaseRequest) -> web.StreamResponse:
        return _json(self.status())

    async def _metrics(self, request: web.BaseRequest) -> web.StreamResponse:
        st = self.node.raw.status()
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, value: float, labels: str = "") -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name}{labels} {value}")

        metric("raftkv_server_has_leader", "gauge", "1 if a leader is known.", int(st.lead != 0))
        metric(
            "raftkv_server_is_leader",
            "gauge",
            "1 if this member is the leader.",
            int(st.role is Role.LEADER),
        )
        metric(
            "raftkv_server_leader_changes_seen_total",
            "counter",
            "Role or leader changes seen.",
            self.leader_changes,
        )
        metric("raftkv_raft_term", "gauge", "The current Raft term.", st.term)
        metric("raftkv_raft_commit_index", "gauge", "The commit index.", st.commit)
        metric("raftkv_raft_applied_index", "gauge", "The applied index.", self.node.applied)
        metric("raftkv_raft_last_index", "gauge", "The last log index.", st.last_index)
        metric(
            "raftkv_raft_snapshot_index",
            "gauge",
            "The latest snapshot's index.",
            self.node.snapshot_index,
        )
        metric(
            "raftkv_proposals_applied_total",
            "counter",
            "Entries with a command applied on this member.",
            self.events.cmds_applied,
        )
        metric(
            "raftkv_raft_commit_notices_replaced_total",
            "counter",
            "Appends carrying only a commit index that a later append made unnecessary.",
            self.node.notices.replaced,
        )
        metric("raftkv_mvcc_revision", "gauge", "The store's revision.", self.service.sm.revision)
        fsyncs = self._fsyncs() if self._fsyncs is not None else None
        if fsyncs is not None:
            metric("raftkv_wal_fsync_total", "counter", "WAL fsyncs since start.", fsyncs)
        if self.transport is not None:
            stats = sorted(self.transport.stats().items())
            for name, attr, help_ in (
                ("raftkv_peer_sent_messages_total", "messages_sent", "Messages sent to a peer."),
                ("raftkv_peer_sent_bytes_total", "bytes_sent", "Bytes sent to a peer."),
                (
                    "raftkv_peer_received_messages_total",
                    "messages_received",
                    "Messages received from a peer.",
                ),
                ("raftkv_peer_dropped_messages_total", "dropped", "Outbound messages dropped."),
            ):
                lines.append(f"# HELP {name} {help_}")
                lines.append(f"# TYPE {name} counter")
                for peer, s in stats:
                    lines.append(f'{name}{{peer="{peer}"}} {getattr(s, attr)}')
        metric(
            "raftkv_process_uptime_seconds",
            "gauge",
            "Seconds since the member started.",
            round(time.monotonic() - self.started_at, 3),
        )
        return web.Response(
            body=("\n".join(lines) + "\n").encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )

    # -- events ---------------------------------------------------------------------------------

    async def _events(self, request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Access-Control-Allow-Origin": "*",
            }
        )
        await resp.prepare(request)
        q = self.events.subscribe()
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            while not self._closing.is_set():
                get = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait(
                    {get, closing}, timeout=15.0, return_when=asyncio.FIRST_COMPLETED
                )
                if get not in done:
                    get.cancel()
                    if closing in done:
                        break
                    await resp.write(b": keepalive\n\n")
                    continue
                batch = [get.result()]
                while not q.empty():
                    batch.append(q.get_nowait())
                data = "".join(f"data: {json.dumps(e, separators=(',', ':'))}\n\n" for e in batch)
                await resp.write(data.encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            closing.cancel()
            self.events.unsubscribe(q)
        with contextlib.suppress(Exception):
            await resp.write_eof()
        return resp

    # -- debug ----------------------------------------------------------------------------------

    async def _partition(self, request: web.BaseRequest) -> web.StreamResponse:
        body = await self._body(request)
        drop = body.get("drop")
        if not isinstance(drop, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in drop
        ):
            raise BadRequest('expected {"drop": [member ids]}')
        if self.transport is None:
            raise BadRequest("this member has no peer transport")
        self.transport.drop_peers(drop)
        return _json({"dropped": sorted(set(drop) - {self.node.id})})

    async def _move_leader(self, request: web.BaseRequest) -> web.StreamResponse:
        """``{"to": member id}`` on the leader: hand leadership over (etcdctl move-leader)."""
        body = await self._body(request)
        to = body.get("to")
        if not isinstance(to, int) or isinstance(to, bool):
            raise BadRequest('expected {"to": member id}')
        await self.service.move_leader(to)
        return _json({"leader": to})

    async def _heal(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.transport is not None:
            self.transport.heal()
        return _json({"healed": True})
