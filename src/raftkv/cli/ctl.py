"""``raftkv put|get|del|watch|txn|lease|member|status``: etcdctl 3.4's commands and output,
over raftkv's native protocol (``raftkv.client``).

``main(argv)`` gets the command name first (``["get", "foo", "--prefix"]``); the global flags
(``--endpoints``, ``-w/--write-out``, ``--dial-timeout``, ``--command-timeout``) go after it.
Output follows etcdctl 3.4: ``simple`` (the default), ``json`` (Go's encoding of etcd's
response structs: etcd's field names, bytes in base64, zero fields left out) and ``table``
(member list, status). Errors: ``Error: <etcd's message>`` on stderr and exit 1; a usage error
exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import shlex
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TextIO

from raftkv.cli import Parser, UsageError
from raftkv.cli.durations import parse_go_duration
from raftkv.client import AsyncClient, ClientError, ConnectionFailed, Timeout
from raftkv.client.aio import prefix_end
from raftkv.kv import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    EventType,
    KeyValue,
    KVError,
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseNotFound,
    LeaseRevokeResponse,
    LeaseTimeToLiveResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    SortOrder,
    SortTarget,
    TxnResponse,
    WatchResponse,
)
from raftkv.kv.wire import MemberListResponse, StatusResponse

DEFAULT_ENDPOINTS = "127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379"
EXIT_ERROR = 1
EXIT_USAGE = 2

COMMANDS = ("put", "get", "del", "watch", "txn", "lease", "member", "status")


# --- flags -------------------------------------------------------------------------------------

def parse_duration(text: str) -> float:
    """Seconds of a Go duration (``5s``, ``500ms``, ``1m30s``) or a plain number of seconds."""
    try:
        return float(text)
    except ValueError:
        return parse_go_duration(text)


def parse_hex_id(text: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad lease ID arg ({text!r})") from None


def _globals(p: argparse.ArgumentParser, sub: bool = False) -> None:
    """The global flags; on a sub-command's parser they do not reset what the parent parsed."""

    def d(value: object) -> object:
        return argparse.SUPPRESS if sub else value

    g = p.add_argument_group("global flags")
    g.add_argument("--endpoints", default=d(DEFAULT_ENDPOINTS), help="comma-separated endpoints")
    g.add_argument(
        "-w", "--write-out", dest="write_out", choices=("simple", "json", "table"),
        default=d("simple"),
    )  # fmt: skip
    g.add_argument("--dial-timeout", type=parse_duration, default=d(2.0), help="e.g. 2s")
    g.add_argument("--command-timeout", type=parse_duration, default=d(5.0), help="e.g. 5s")


def _put_flags(p: argparse.ArgumentParser, value_optional: bool = True) -> None:
    p.add_argument("key")
    p.add_argument("value", nargs="?" if value_optional else None)
    p.add_argument("--lease", type=parse_hex_id, default=0, help="lease ID (in hexadecimal)")
    p.add_argument("--prev-kv", action="store_true")
    p.add_argument("--ignore-value", action="store_true")
    p.add_argument("--ignore-lease", action="store_true")


_SORT_TARGETS = {
    "KEY": SortTarget.KEY,
    "VERSION": SortTarget.VERSION,
    "CREATE": SortTarget.CREATE,
    "MODIFY": SortTarget.MOD,
    "VALUE": SortTarget.VALUE,
}


def _get_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("key")
    p.add_argument("range_end", nargs="?", default="")
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--from-key", action="store_true")
    p.add_argument("--rev", type=int, default=0)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--keys-only", action="store_true")
    p.add_argument("--count-only", action="store_true")
    p.add_argument("--print-value-only", action="store_true")
    p.add_argument("--sort-by", type=str.upper, choices=tuple(_SORT_TARGETS), default=None)
    p.add_argument("--order", type=str.upper, choices=("ASCEND", "DESCEND"), default=None)
    p.add_argument("--consistency", choices=("l", "s"), default="l")


def _del_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("key")
    p.add_argument("range_end", nargs="?", default="")
    p.add_argument("--prefix", action="store_true")
    p.add_argument("--from-key", action="store_true")
    p.add_argument("--prev-kv", action="store_true")


def _parser(command: str) -> argparse.ArgumentParser:
    p = Parser(prog=f"raftkv {command}", allow_abbrev=False)
    _globals(p)
    match command:
        case "put":
            _put_flags(p)
        case "get":
            _get_flags(p)
        case "del":
            _del_flags(p)
        case "watch":
            p.add_argument("key")
            p.add_argument("range_end", nargs="?", default="")
            p.add_argument("--prefix", action="store_true")
            p.add_argument("--rev", type=int, default=0)
            p.add_argument("--prev-kv", action="store_true")
        case "txn":
            p.add_argument("-i", "--interactive", action="store_true", help="show prompts")
        case "lease":
            sub = p.add_subparsers(dest="sub", required=True, parser_class=Parser)
            sub.add_parser("grant").add_argument("ttl", type=int)
            sub.add_parser("revoke").add_argument("id", type=parse_hex_id)
            ka = sub.add_parser("keep-alive")
            ka.add_argument("id", type=parse_hex_id)
            ka.add_argument("--once", action="store_true")
            ttl = sub.add_parser("timetolive")
            ttl.add_argument("id", type=parse_hex_id)
            ttl.add_argument("--keys", action="store_true")
            sub.add_parser("list")
            for sp in sub.choices.values():
                _globals(sp, sub=True)
        case "member":
            sub = p.add_subparsers(dest="sub", required=True, parser_class=Parser)
            _globals(sub.add_parser("list"), sub=True)
        case "status":
            pass
        case _:
            raise UsageError(f"unknown command {command!r}")
    return p


# --- output: simple ------------------------------------------------------------------------------


def _s(b: bytes) -> str:
    return b.decode("utf-8", errors="replace")


class Printer:
    """etcdctl 3.4's printers. ``out`` is looked up at each print (pytest's capsys swaps it)."""

    def __init__(self, fmt: str, value_only: bool = False) -> None:
        self.fmt = fmt
        self.value_only = value_only

    @property
    def out(self) -> TextIO:
        return sys.stdout

    def line(self, text: str = "") -> None:
        print(text, file=self.out)

    def kv(self, kv: KeyValue) -> None:
        if not self.value_only:
            self.line(_s(kv.key))
        self.line(_s(kv.value))

    def json(self, obj: object) -> None:
        self.line(json.dumps(obj, separators=(",", ":")))

    def put(self, r: PutResponse) -> None:
        if self.fmt == "json":
            return self.json(put_json(r))
        self.line("OK")
        if r.prev_kv is not None:
            self.kv(r.prev_kv)

    def get(self, r: RangeResponse) -> None:
        if self.fmt == "json":
            return self.json(range_json(r))
        for kv in r.kvs:
            self.kv(kv)

    def delete(self, r: DeleteRangeResponse) -> None:
        if self.fmt == "json":
            return self.json(delete_json(r))
        self.line(str(r.deleted))
        for kv in r.prev_kvs:
            self.kv(kv)

    def txn(self, r: TxnResponse) -> None:
        if self.fmt == "json":
            return self.json(txn_json(r))
        self.line("SUCCESS" if r.succeeded else "FAILURE")
        for op in r.responses:
            self.line()
            match op:
                case PutResponse():
                    self.put(op)
                case RangeResponse():
                    self.get(op)
                case DeleteRangeResponse():
                    self.delete(op)
                case TxnResponse():
                    self.txn(op)

    def watch(self, r: WatchResponse) -> None:
        if self.fmt == "json":
            return self.json(watch_json(r))
        for ev in r.events:
            self.line("PUT" if ev.type == EventType.PUT else "DELETE")
            if ev.prev_kv is not None:
                self.kv(ev.prev_kv)
            self.kv(ev.kv)

    def grant(self, r: LeaseGrantResponse) -> None:
        if self.fmt == "json":
            return self.json({**header_json(r.header), "ID": r.id, "TTL": r.ttl, "Error": r.error})
        self.line(f"lease {r.id:016x} granted with TTL({r.ttl}s)")

    def revoke(self, lease_id: int, r: LeaseRevokeResponse) -> None:
        if self.fmt == "json":
            return self.json(_omit({"header": header_json(r.header)}))
        self.line(f"lease {lease_id:016x} revoked")

    def keep_alive(self, r: LeaseKeepAliveResponse) -> None:
        if self.fmt == "json":
            return self.json({**header_json(r.header), "ID": r.id, "TTL": r.ttl})
        self.line(f"lease {r.id:016x} keepalived with TTL({r.ttl})")

    def time_to_live(self, r: LeaseTimeToLiveResponse, keys: bool) -> None:
        if self.fmt == "json":
            return self.json(
                {
                    **header_json(r.header),
                    "id": r.id,
                    "ttl": r.ttl,
                    "granted-ttl": r.granted_ttl,
                    "keys": [_b64(k) for k in r.keys] if r.keys else None,
                }
            )
        if r.granted_ttl == 0 and r.ttl == -1:
            self.line(f"lease {r.id:016x} already expired")
            return
        txt = f"lease {r.id:016x} granted with TTL({r.granted_ttl}s), remaining({r.ttl}s)"
        if keys:
            txt += f", attached keys([{' '.join(_s(k) for k in r.keys)}])"
        self.line(txt)

    def leases(self, r: LeaseLeasesResponse) -> None:
        if self.fmt == "json":
            return self.json({**header_json(r.header), "leases": [{"id": s.id} for s in r.leases]})
        self.line(f"found {len(r.leases)} leases")
        for s in r.leases:
            self.line(f"{s.id:016x}")

    def member_list(self, r: MemberListResponse) -> None:
        if self.fmt == "json":
            return self.json(member_list_json(r))
        rows = [
            [
                f"{m.id:x}",
                "started" if m.name else "unstarted",
                m.name,
                ",".join(m.peer_urls),
                ",".join(m.client_urls),
                "true" if m.is_learner else "false",
            ]
            for m in r.members
        ]
        if self.fmt == "table":
            head = ["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"]
            return self.table(head, rows)
        for row in rows:
            self.line(", ".join(row))

    def status(self, rows: list[tuple[str, StatusResponse]]) -> None:
        if self.fmt == "json":
            return self.json([{"Endpoint": ep, "Status": status_json(st)} for ep, st in rows])
        lines = [
            [
                ep,
                f"{st.header.member_id:x}",
                st.version,
                _human_bytes(st.db_size),
                "true" if st.leader == st.header.member_id else "false",
                "true" if st.is_learner else "false",
                str(st.raft_term),
                str(st.raft_index),
                str(st.raft_applied_index),
                ", ".join(st.errors),
            ]
            for ep, st in rows
        ]
        if self.fmt == "table":
            head = [
                "ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER",
                "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS",
            ]  # fmt: skip
            return self.table(head, lines)
        for row in lines:
            self.line(", ".join(row))

    def table(self, head: list[str], rows: list[list[str]]) -> None:
        from rich import box
        from rich.console import Console
        from rich.table import Table

        t = Table(box=box.ASCII2, show_lines=False, header_style=None)
        for h in head:
            t.add_column(h, justify="center", no_wrap=True)
        for row in rows:
            t.add_row(*row)
        Console(file=self.out, width=1000, color_system=None, highlight=False).print(t)


def _human_bytes(n: int) -> str:
    """go-humanize's Bytes (SI units), which etcdctl uses for the DB size."""
    if n < 10:
        return f"{n} B"
    units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"]
    value, i = float(n), 0
    while value >= 1000 and i < len(units) - 1:
        value /= 1000
        i += 1
    return f"{value:.0f} {units[i]}" if value >= 10 or i == 0 else f"{value:.1f} {units[i]}"


# --- output: json (Go's encoding/json of etcd's structs, omitempty) -----------------------------


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _omit(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, 0, False, "", [], {})}


def header_json(h: ResponseHeader) -> dict[str, Any]:
    return _omit(
        {
            "cluster_id": h.cluster_id,
            "member_id": h.member_id,
            "revision": h.revision,
            "raft_term": h.raft_term,
        }
    )


def kv_json(kv: KeyValue) -> dict[str, Any]:
    return _omit(
        {
            "key": _b64(kv.key) if kv.key else "",
            "create_revision": kv.create_revision,
            "mod_revision": kv.mod_revision,
            "version": kv.version,
            "value": _b64(kv.value) if kv.value else "",
            "lease": kv.lease,
        }
    )


def put_json(r: PutResponse) -> dict[str, Any]:
    return _omit({"header": header_json(r.header), "prev_kv": r.prev_kv and kv_json(r.prev_kv)})


def range_json(r: RangeResponse) -> dict[str, Any]:
    return _omit(
        {
            "header": header_json(r.header),
            "kvs": [kv_json(kv) for kv in r.kvs],
            "more": r.more,
            "count": r.count,
        }
    )


def delete_json(r: DeleteRangeResponse) -> dict[str, Any]:
    return _omit(
        {
            "header": header_json(r.header),
            "deleted": r.deleted,
            "prev_kvs": [kv_json(kv) for kv in r.prev_kvs],
        }
    )


def txn_json(r: TxnResponse) -> dict[str, Any]:
    ops: list[dict[str, Any]] = []
    for op in r.responses:
        match op:
            case PutResponse():
                ops.append({"Response": {"response_put": put_json(op)}})
            case RangeResponse():
                ops.append({"Response": {"response_range": range_json(op)}})
            case DeleteRangeResponse():
                ops.append({"Response": {"response_delete_range": delete_json(op)}})
            case TxnResponse():
                ops.append({"Response": {"response_txn": txn_json(op)}})
    return _omit({"header": header_json(r.header), "succeeded": r.succeeded, "responses": ops})


def watch_json(r: WatchResponse) -> dict[str, Any]:
    events = [
        _omit(
            {
                "type": int(ev.type),
                "kv": kv_json(ev.kv),
                "prev_kv": ev.prev_kv and kv_json(ev.prev_kv),
            }
        )
        for ev in r.events
    ]
    return {
        "Header": header_json(r.header),
        "Events": events or None,
        "CompactRevision": r.compact_revision,
        "Canceled": r.canceled,
        "Created": r.created,
    }


def member_list_json(r: MemberListResponse) -> dict[str, Any]:
    members = [
        _omit(
            {
                "ID": m.id,
                "name": m.name,
                "peerURLs": list(m.peer_urls),
                "clientURLs": list(m.client_urls),
                "isLearner": m.is_learner,
            }
        )
        for m in r.members
    ]
    return _omit({"header": header_json(r.header), "members": members})


def status_json(st: StatusResponse) -> dict[str, Any]:
    return _omit(
        {
            "header": header_json(st.header),
            "version": st.version,
            "dbSize": st.db_size,
            "leader": st.leader,
            "raftIndex": st.raft_index,
            "raftTerm": st.raft_term,
            "raftAppliedIndex": st.raft_applied_index,
            "errors": list(st.errors),
            "dbSizeInUse": st.db_size_in_use,
            "isLearner": st.is_learner,
        }
    )


# --- txn from stdin --------------------------------------------------------------------------------

_CMP = re.compile(r'^\s*(\w+)\("((?:[^"\\]|\\.)*)"\)\s*(=|!=|<|>)\s*"((?:[^"\\]|\\.)*)"\s*$')
_CMP_RESULT = {
    "=": CompareResult.EQUAL,
    "!=": CompareResult.NOT_EQUAL,
    "<": CompareResult.LESS,
    ">": CompareResult.GREATER,
}


def _unquote(s: str) -> bytes:
    try:
        out = json.loads(f'"{s}"')
    except ValueError:
        out = s
    return str(out).encode()


def parse_compare(line: str) -> Compare:
    """etcdctl's txn compare syntax: ``mod("key") > "0"``, ``value("k") = "v"``."""
    m = _CMP.match(line)
    if m is None:
        raise UsageError(f"malformed comparison: {line}")
    target, key, op, val = m.group(1), _unquote(m.group(2)), m.group(3), _unquote(m.group(4))
    result = _CMP_RESULT[op]

    def num() -> int:
        try:
            return int(val)
        except ValueError:
            raise UsageError(f"malformed comparison: {line} (invalid integer)") from None

    match target:
        case "ver" | "version":
            return Compare(result, CompareTarget.VERSION, key, version=num())
        case "c" | "create":
            return Compare(result, CompareTarget.CREATE, key, create_revision=num())
        case "m" | "mod":
            return Compare(result, CompareTarget.MOD, key, mod_revision=num())
        case "val" | "value":
            return Compare(result, CompareTarget.VALUE, key, value=val)
        case "lease":
            return Compare(result, CompareTarget.LEASE, key, lease=num())
    raise UsageError(f"malformed comparison: {line} (unknown target {target})")


def parse_op(line: str) -> RequestOp:
    """One txn operation: ``put KEY VALUE``, ``get KEY [RANGE_END] [flags]``, ``del ...``."""
    try:
        args = shlex.split(line)
    except ValueError as e:
        raise UsageError(f"invalid txn operation {line!r}: {e}") from None
    if not args or args[0] not in ("put", "get", "del"):
        raise UsageError(f"invalid txn operation {line!r}: expected put, get or del")
    p = Parser(prog=args[0], add_help=False)
    {"put": lambda q: _put_flags(q, value_optional=False), "get": _get_flags, "del": _del_flags}[
        args[0]
    ](p)
    ns = p.parse_args(args[1:])
    match args[0]:
        case "put":
            return PutRequest(
                ns.key.encode(), ns.value.encode(), ns.lease, ns.prev_kv, ns.ignore_value,
                ns.ignore_lease,
            )  # fmt: skip
        case "get":
            return _range_request(ns)
        case _:
            key = ns.key.encode()
            return DeleteRangeRequest(
                key, _end(key, ns.range_end.encode(), ns.prefix, ns.from_key), ns.prev_kv
            )


def read_txn(
    stdin: TextIO, interactive: bool
) -> tuple[list[Compare], list[RequestOp], list[RequestOp]]:
    """etcdctl's txn input: compares, a blank line, success ops, a blank line, failure ops."""

    def block(prompt: str) -> list[str]:
        if interactive:
            print(prompt, file=sys.stdout)
        lines: list[str] = []
        for raw in stdin:
            line = raw.strip()
            if not line:
                break
            lines.append(line)
        return lines

    compares = [parse_compare(x) for x in block("compares:")]
    success = [parse_op(x) for x in block("success requests (get, put, del):")]
    failure = [parse_op(x) for x in block("failure requests (get, put, del):")]
    return compares, success, failure


# --- commands ---------------------------------------------------------------------------------------


def _end(key: bytes, range_end: bytes, prefix: bool, from_key: bool) -> bytes:
    if prefix:
        return prefix_end(key) if key else b"\x00"
    if from_key:
        return b"\x00"
    return range_end


def _range_request(ns: argparse.Namespace) -> RangeRequest:
    if ns.prefix and ns.from_key:
        raise UsageError("`--prefix` and `--from-key` cannot be set at the same time, choose one")
    key = ns.key.encode()
    target = _SORT_TARGETS[ns.sort_by] if ns.sort_by else SortTarget.KEY
    order = SortOrder[ns.order] if ns.order else SortOrder.NONE
    if ns.sort_by and order == SortOrder.NONE:
        order = SortOrder.ASCEND
    if target == SortTarget.KEY and order == SortOrder.ASCEND:
        order = SortOrder.NONE
    return RangeRequest(
        key,
        _end(key, ns.range_end.encode(), ns.prefix, ns.from_key),
        limit=ns.limit,
        revision=ns.rev,
        sort_order=order,
        sort_target=target,
        serializable=ns.consistency == "s",
        keys_only=ns.keys_only,
        count_only=ns.count_only,
    )


def _endpoints(text: str) -> list[str]:
    eps = [e.strip() for e in text.split(",") if e.strip()]
    if not eps:
        raise UsageError("no endpoints given")
    return eps


async def _run(command: str, ns: argparse.Namespace, pr: Printer) -> int:
    eps = _endpoints(ns.endpoints)
    try:
        client = AsyncClient(eps, dial_timeout=ns.dial_timeout, command_timeout=ns.command_timeout)
    except ValueError as e:
        raise UsageError(str(e)) from None
    async with client as c:
        match command:
            case "put":
                value = ns.value if ns.value is not None else sys.stdin.read()
                pr.put(
                    await c._write(
                        PutRequest(
                            ns.key.encode(), value.encode(), ns.lease, ns.prev_kv,
                            ns.ignore_value, ns.ignore_lease,
                        ),
                        PutResponse,
                    )
                )  # fmt: skip
            case "get":
                pr.get(await c._typed(_range_request(ns), RangeResponse))
            case "del":
                if ns.prefix and ns.from_key:
                    raise UsageError(
                        "`--prefix` and `--from-key` cannot be set at the same time, choose one"
                    )
                key = ns.key.encode()
                req = DeleteRangeRequest(
                    key, _end(key, ns.range_end.encode(), ns.prefix, False), ns.prev_kv
                )
                pr.delete(await c._write(req, DeleteRangeResponse))
            case "txn":
                cmp, succ, fail = read_txn(sys.stdin, ns.interactive)
                pr.txn(await c.txn(cmp, succ, fail))
            case "watch":
                async with c.watch(
                    ns.key, ns.range_end, prefix=ns.prefix, start_revision=ns.rev,
                    prev_kv=ns.prev_kv,
                ) as w:  # fmt: skip
                    async for resp in w:
                        pr.watch(resp)
                        sys.stdout.flush()
            case "lease":
                return await _lease(c, ns, pr)
            case "member":
                pr.member_list(await c.member_list())
            case "status":
                rows: list[tuple[str, StatusResponse]] = []
                for ep in eps:
                    try:
                        rows.append((ep, await c.status(ep)))
                    except (ClientError, KVError) as e:
                        print(f"Failed to get the status of endpoint {ep} ({e})", file=sys.stderr)
                if not rows:
                    raise ConnectionFailed("no endpoint answered")
                pr.status(rows)
    return 0


async def _lease(c: AsyncClient, ns: argparse.Namespace, pr: Printer) -> int:
    match ns.sub:
        case "grant":
            pr.grant(await c.lease_grant(ns.ttl))
        case "revoke":
            pr.revoke(ns.id, await c.lease_revoke(ns.id))
        case "timetolive":
            pr.time_to_live(await c.lease_time_to_live(ns.id, ns.keys), ns.keys)
        case "list":
            pr.leases(await c.lease_leases())
        case "keep-alive":
            if ns.once:
                pr.keep_alive(await c.lease_keep_alive_once(ns.id))
                return 0
            try:
                async for resp in c.lease_keep_alive(ns.id):
                    pr.keep_alive(resp)
                    sys.stdout.flush()
            except LeaseNotFound:
                if pr.fmt == "simple":
                    pr.line(f"lease {ns.id:016x} expired or revoked.")
    return 0


_TABLE_COMMANDS = frozenset({"member", "status"})


def main(argv: Sequence[str]) -> int:
    """Run one etcdctl-shaped command; ``argv[0]`` is its name. Returns the exit code."""
    args = list(argv)
    if not args or args[0] not in COMMANDS:
        print(f"Error: unknown command {args[0] if args else ''!r}; one of: {', '.join(COMMANDS)}",
              file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    command = args[0]
    try:
        try:
            ns = _parser(command).parse_args(args[1:])
        except SystemExit as e:  # --help
            return e.code if isinstance(e.code, int) else 0
        if ns.write_out == "table" and command not in _TABLE_COMMANDS:
            raise UsageError(f'command "{command}" is not supported with table format')
        pr = Printer(ns.write_out, value_only=getattr(ns, "print_value_only", False))
        return _arun(_run(command, ns, pr))
    except UsageError as e:
        print(f"Error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Timeout:
        print("Error: context deadline exceeded", file=sys.stderr)
        return EXIT_ERROR
    except (KVError, ClientError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _arun(coro: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coro)
