"""etcd 3.4's JSON gateway (grpc-gateway) on the client port's HTTP/1.x side.

Each route takes the JSON form of an ``etcdserverpb`` request (proto field names or their
lowerCamel forms, bytes in base64, int64 as a string or a number) and answers the JSON form of the
response as etcd's gateway does: proto field names, bytes in base64, 64-bit integers as strings,
fields at their default value left out. Errors are ``{"error": text, "code": grpc code,
"message": text}`` with grpc-gateway's HTTP status for that code. Streams (``/v3/watch``,
``/v3/lease/keepalive``) answer one ``{"result": ...}`` object per chunk, one per line.

Every call goes to ``raftkv.server.grpc.EtcdApi``, the same code the gRPC services run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message
from grpclib.const import Status

from raftkv.kv import KVError
from raftkv.server.etcdpb import rpc_pb2 as pb
from raftkv.server.grpc import EtcdApi, WatchSession
from raftkv.server.service import KVService

log = logging.getLogger("raftkv.server.gateway")

MAX_BODY = 4 * 1024 * 1024

# grpc-gateway v1's runtime.HTTPStatusFromCode
HTTP_STATUS = {
    Status.OK: 200,
    Status.CANCELLED: 408,
    Status.UNKNOWN: 500,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.UNAUTHENTICATED: 401,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 412,
    Status.ABORTED: 409,
    Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500,
}


def to_json(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def error_response(status: Status, message: str) -> web.Response:
    body = {"error": message, "code": status.value, "message": message}
    return web.Response(
        text=_dumps(body), status=HTTP_STATUS.get(status, 500), content_type="application/json"
    )


class _Bad(Exception):
    """A request body the gateway cannot read: INVALID_ARGUMENT with this text."""


async def _read(request: web.BaseRequest) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise _Bad(f"request body larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise _Bad(f"request body larger than {MAX_BODY} bytes")
    return raw


def _parse(raw: bytes, cls: type[Message]) -> Message:
    msg = cls()
    if not raw.strip():
        return msg
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise _Bad(str(e)) from e
    try:
        json_format.ParseDict(body, msg)
    except json_format.ParseError as e:
        raise _Bad(str(e)) from e
    return msg


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class EtcdGateway:
    """Args:
    service: the member's KV service.
    db_size: see ``EtcdApi``.
    """

    def __init__(self, service: KVService, *, db_size: Callable[[], int] | None = None) -> None:
        self.api = api = EtcdApi(service, db_size=db_size)
        self._closing = asyncio.Event()
        unary: dict[str, tuple[type[Message], Callable[[Any], Awaitable[Message]]]] = {
            "/v3/kv/range": (pb.RangeRequest, api.range),
            "/v3/kv/put": (pb.PutRequest, api.put),
            "/v3/kv/deleterange": (pb.DeleteRangeRequest, api.delete_range),
            "/v3/kv/txn": (pb.TxnRequest, api.txn),
            "/v3/kv/compaction": (pb.CompactionRequest, api.compact),
            "/v3/lease/grant": (pb.LeaseGrantRequest, api.lease_grant),
            "/v3/lease/revoke": (pb.LeaseRevokeRequest, api.lease_revoke),
            "/v3/kv/lease/revoke": (pb.LeaseRevokeRequest, api.lease_revoke),
            "/v3/lease/timetolive": (pb.LeaseTimeToLiveRequest, api.lease_time_to_live),
            "/v3/kv/lease/timetolive": (pb.LeaseTimeToLiveRequest, api.lease_time_to_live),
            "/v3/lease/leases": (pb.LeaseLeasesRequest, api.lease_leases),
            "/v3/kv/lease/leases": (pb.LeaseLeasesRequest, api.lease_leases),
            "/v3/cluster/member/list": (pb.MemberListRequest, api.member_list),
            "/v3/maintenance/status": (pb.StatusRequest, api.status),
            "/v3/maintenance/alarm": (pb.AlarmRequest, api.alarm),
            "/v3/maintenance/defragment": (pb.DefragmentRequest, api.defragment),
            "/v3/maintenance/hash": (pb.HashRequest, api.hash),  # HashKV shares it in etcd 3.4
        }
        self._routes: dict[str, Handler] = {
            path: self._unary(cls, call) for path, (cls, call) in unary.items()
        }
        self._routes["/v3/watch"] = self._watch
        self._routes["/v3/lease/keepalive"] = self._keepalive

    def routes(self) -> dict[str, Handler]:
        """POST path → handler, for ``HttpApi``'s route table."""
        return dict(self._routes)

    def close(self) -> None:
        """End the open watch streams."""
        self._closing.set()

    def _unary(self, cls: type[Message], call: Callable[[Any], Awaitable[Message]]) -> Handler:
        async def handle(request: web.BaseRequest) -> web.StreamResponse:
            try:
                req = _parse(await _read(request), cls)
                resp = await call(req)
            except _Bad as e:
                return error_response(Status.INVALID_ARGUMENT, str(e))
            except KVError as e:
                return error_response(Status[e.code] if e.code in Status.__members__
                                      else Status.UNKNOWN, str(e))  # fmt: skip
            return web.Response(text=_dumps(to_json(resp)), content_type="application/json")

        return handle

    async def _stream_start(self, request: web.BaseRequest) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        return resp

    async def _watch(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            raw = await _read(request)
            # grpc-gateway reads a stream of JSON requests; one object per request here
            reqs = [_parse(raw, pb.WatchRequest)]
        except _Bad as e:
            return error_response(Status.INVALID_ARGUMENT, str(e))
        out: asyncio.Queue[pb.WatchResponse] = asyncio.Queue()
        session = WatchSession(self.api, out.put_nowait)
        resp = await self._stream_start(request)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            for r in reqs:
                assert isinstance(r, pb.WatchRequest)
                session.handle(r)
            while not self._closing.is_set():
                get = asyncio.ensure_future(out.get())
                done, _ = await asyncio.wait({get, closing}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break
                msg = get.result()
                await resp.write((_dumps({"result": to_json(msg)}) + "\n").encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            closing.cancel()
            session.close()
        with contextlib.suppress(Exception):
            await resp.write_eof()
        return resp

    async def _keepalive(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            req = _parse(await _read(request), pb.LeaseKeepAliveRequest)
            assert isinstance(req, pb.LeaseKeepAliveRequest)
            ka = await self.api.lease_keepalive(req)
        except _Bad as e:
            return error_response(Status.INVALID_ARGUMENT, str(e))
        except KVError as e:
            return error_response(Status[e.code] if e.code in Status.__members__
                                  else Status.UNKNOWN, str(e))  # fmt: skip
        resp = await self._stream_start(request)
        with contextlib.suppress(ConnectionError):
            await resp.write((_dumps({"result": to_json(ka)}) + "\n").encode())
            await resp.write_eof()
        return resp
