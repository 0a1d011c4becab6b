"""``raftkv serve``: run one member of a cluster, with etcd's flags.

Startup, in an order that leaves the data dir untouched by any startup error:

1. parse and check the flags (usage error: one line, exit 2);
2. read the data dir's ``raftkv-meta.json``: a data dir of another cluster or member is refused
   (exit 2) before anything is written;
3. bind the client and peer ports (taken: one line, exit 2);
4. write the metadata file (first start only), open the WAL in ``<data-dir>/member``
   (corrupt: one line, exit 1) bootstrapped with the ``ConfState`` of every initial member;
5. run the node, the KV service and the client listener until SIGTERM or SIGINT.

Shutdown: stop accepting, let in-flight HTTP requests finish, hand leadership over when leader,
stop the node (which finishes the queued WAL writes and closes the WAL), exit 0. A storage failure while running: exit 1.

Identities (stable across runs and machines, from SHA-256, never ``hash()``): the cluster id
hashes the ``--initial-cluster-token`` and the sorted peer URLs of the initial cluster; a member
id hashes the member's name and peer URL. Both are positive 63-bit integers.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

from raftkv.cli.durations import parse_go_duration
from raftkv.kv import KVStateMachine
from raftkv.kv.txn import MAX_TXN_OPS
from raftkv.node import Node, NodeConfig, Role
from raftkv.raft.messages import Message
from raftkv.raft.types import ConfState
from raftkv.server.http import HttpApi
from raftkv.server.listener import ClientListener
from raftkv.server.service import KVService, Member, ServiceConfig
from raftkv.storage import AsyncDiskStorage, CorruptionError, DataDirLocked, DiskStorageError
from raftkv.transport import DEFAULT_MAX_FRAME, PeerTransport

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2

META_FILE = "raftkv-meta.json"
MEMBER_DIR = "member"
_MASK63 = (1 << 63) - 1

log = logging.getLogger("raftkv.serve")


class ConfigError(Exception):
    """A usage or configuration error: one line, exit 2."""


class RuntimeFailure(Exception):
    """A runtime error at startup (a corrupt WAL): one line, exit 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def stable_id(*parts: str) -> int:
    """A positive 63-bit id from SHA-256 of ``parts`` (stable across runs, unlike ``hash``)."""
    digest = hashlib.sha256("\x00".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") & _MASK63 or 1


def member_id(name: str, peer_url: str) -> int:
    return stable_id("member", name, peer_url)


def cluster_id(token: str, peer_urls: Sequence[str]) -> int:
    return stable_id("cluster", token, *sorted(peer_urls))


def parse_url(url: str, flag: str) -> tuple[str, int]:
    """``http://host:port`` → (host, port)."""
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError as e:
        raise ConfigError(f"{flag}: bad URL {url!r}: {e}") from e
    if u.scheme != "http":
        raise ConfigError(f"{flag}: URL {url!r} must start with http:// (TLS is not supported)")
    if not u.hostname or port is None:
        raise ConfigError(f"{flag}: URL {url!r} must name a host and a port")
    return u.hostname, port


def _urls(value: str, flag: str) -> list[str]:
    urls = [u.strip() for u in value.split(",") if u.strip()]
    if not urls:
        raise ConfigError(f"{flag}: no URL given")
    for u in urls:
        parse_url(u, flag)
    return urls


def parse_initial_cluster(value: str) -> dict[str, str]:
    """``name=url,name=url`` → {name: first peer url} (in order)."""
    out: dict[str, str] = {}
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, url = item.partition("=")
        if not sep or not name or not url:
            raise ConfigError(f"--initial-cluster: expected name=url, got {item!r}")
        parse_url(url, "--initial-cluster")
        out.setdefault(name, url)
    if not out:
        raise ConfigError("--initial-cluster: no member given")
    return out


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    name: str
    data_dir: str
    client_addr: tuple[str, int]
    client_urls: tuple[str, ...]
    peer_addr: tuple[str, int]
    peer_url: str
    cluster: dict[str, str]
    cluster_state: str
    token: str
    member_id: int
    cluster_id: int
    members: tuple[Member, ...]
    tick_ms: int
    election_tick: int
    heartbeat_tick: int
    snapshot_count: int
    max_request_bytes: int
    max_txn_ops: int
    fault_injection: bool
    wal_segment_size: int
    watch_progress_interval: float


def _duration(text: str) -> float:
    """A positive Go duration (``10m``, ``1m30s``, ``500ms``) in seconds."""
    seconds = parse_go_duration(text)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"the duration must be positive: {text!r}")
    return seconds


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="raftkv serve",
        description="Run one member of a raftkv cluster (etcd's flags).",
    )
    p.add_argument("--name", default="default", help="human-readable name of this member")
    p.add_argument("--data-dir", default=None, help="data directory (default: <name>.etcd)")
    p.add_argument("--listen-client-urls", default="http://127.0.0.1:2379")
    p.add_argument("--advertise-client-urls", default=None)
    p.add_argument("--listen-peer-urls", default="http://127.0.0.1:2380")
    p.add_argument("--initial-advertise-peer-urls", default=None)
    p.add_argument(
        "--initial-cluster",
        default=None,
        help="name=peer-url,... (default: <name>=<initial-advertise-peer-url>)",
    )
    p.add_argument("--initial-cluster-state", choices=("new", "existing"), default="new")
    p.add_argument("--initial-cluster-token", default="etcd-cluster")
    p.add_argument("--heartbeat-interval", type=int, default=50, help="ms")
    p.add_argument("--election-timeout", type=int, default=150, help="ms")
    p.add_argument("--snapshot-count", type=int, default=100_000)
    p.add_argument("--max-request-bytes", type=int, default=1536 * 1024)
    p.add_argument("--max-txn-ops", type=int, default=MAX_TXN_OPS)
    p.add_argument(
        "--experimental-watch-progress-notify-interval",
        type=_duration,
        default=600.0,
        metavar="DURATION",
        help="how often an idle watch created with progress_notify gets a progress "
        "notification (etcd's flag; a Go duration: 10m, 5s, 500ms)",
    )
    p.add_argument(
        "--log-level", choices=("debug", "info", "warn", "warning", "error"), default="info"
    )
    p.add_argument(
        "--enable-fault-injection",
        action="store_true",
        help="serve /raftkv/v1/debug/{partition,heal} (tests only)",
    )
    p.add_argument(
        "--wal-segment-size",
        type=int,
        default=64 * 1024 * 1024,
        help="bytes preallocated per WAL segment (raftkv extension)",
    )
    return p


def build_config(argv: Sequence[str]) -> tuple[ServeConfig, str]:
    """Parse and check ``argv``; returns the config and the log level.

    Raises:
        ConfigError: a bad flag or value.
    """
    a = _parser().parse_args(list(argv))
    name: str = a.name
    if not name or "=" in name or "," in name:
        raise ConfigError(f"--name: invalid member name {name!r}")
    client_urls = _urls(a.listen_client_urls, "--listen-client-urls")
    peer_listen = _urls(a.listen_peer_urls, "--listen-peer-urls")
    advertise_peer = (
        _urls(a.initial_advertise_peer_urls, "--initial-advertise-peer-urls")
        if a.initial_advertise_peer_urls
        else peer_listen
    )
    advertise_client = (
        _urls(a.advertise_client_urls, "--advertise-client-urls")
        if a.advertise_client_urls
        else client_urls
    )
    peer_url = advertise_peer[0]
    cluster = parse_initial_cluster(a.initial_cluster or f"{name}={peer_url}")
    if name not in cluster:
        raise ConfigError(f"--initial-cluster has no member named {name!r}")
    if cluster[name] != peer_url:
        raise ConfigError(
            f"--initial-cluster gives {name} the peer URL {cluster[name]}, but "
            f"--initial-advertise-peer-urls is {peer_url}"
        )
    if a.heartbeat_interval <= 0 or a.election_timeout <= 0:
        raise ConfigError("--heartbeat-interval and --election-timeout must be positive")
    tick_ms = min(10, a.heartbeat_interval)
    heartbeat_tick = max(1, round(a.heartbeat_interval / tick_ms))
    election_tick = max(1, round(a.election_timeout / tick_ms))
    if election_tick <= heartbeat_tick:
        raise ConfigError(
            f"--election-timeout ({a.election_timeout} ms) must be longer than "
            f"--heartbeat-interval ({a.heartbeat_interval} ms)"
        )
    if a.snapshot_count < 1:
        raise ConfigError("--snapshot-count must be positive")
    if a.max_request_bytes < 1 or a.max_txn_ops < 1:
        raise ConfigError("--max-request-bytes and --max-txn-ops must be positive")
    if a.wal_segment_size < 64 * 1024:
        raise ConfigError("--wal-segment-size must be at least 64 KiB")
    ids = {n: member_id(n, u) for n, u in cluster.items()}
    if len(set(ids.values())) != len(ids):
        raise ConfigError("--initial-cluster: two members hash to one id; rename one")
    members = tuple(
        Member(
            id=ids[n],
            name=n,
            peer_urls=(u,),
            client_urls=tuple(advertise_client) if n == name else (),
        )
        for n, u in cluster.items()
    )
    cfg = ServeConfig(
        name=name,
        data_dir=os.path.abspath(a.data_dir or f"{name}.etcd"),
        client_addr=parse_url(client_urls[0], "--listen-client-urls"),
        client_urls=tuple(advertise_client),
        peer_addr=parse_url(peer_listen[0], "--listen-peer-urls"),
        peer_url=peer_url,
        cluster=cluster,
        cluster_state=a.initial_cluster_state,
        token=a.initial_cluster_token,
        member_id=ids[name],
        cluster_id=cluster_id(a.initial_cluster_token, list(cluster.values())),
        members=members,
        tick_ms=tick_ms,
        election_tick=election_tick,
        heartbeat_tick=heartbeat_tick,
        snapshot_count=a.snapshot_count,
        max_request_bytes=a.max_request_bytes,
        max_txn_ops=a.max_txn_ops,
        fault_injection=a.enable_fault_injection,
        wal_segment_size=a.wal_segment_size,
        watch_progress_interval=a.experimental_watch_progress_notify_interval,
    )
    level = {"warn": "warning"}.get(a.log_level, a.log_level)
    return cfg, level


# -- the data dir ---------------------------------------------------------------------------------


def _meta(cfg: ServeConfig) -> dict[str, object]:
    return {
        "format": 1,
        "cluster_id": f"{cfg.cluster_id:x}",
        "member_id": f"{cfg.member_id:x}",
        "name": cfg.name,
        "cluster_token": cfg.token,
        "initial_cluster": cfg.cluster,
    }


def check_data_dir(cfg: ServeConfig) -> bool:
    """Read-only check of the data dir; True when it already holds this member's data.

    Raises:
        ConfigError: the data dir belongs to another cluster or member, or is not raftkv's.
    """
    meta_path = os.path.join(cfg.data_dir, META_FILE)
    if os.path.exists(cfg.data_dir) and not os.path.isdir(cfg.data_dir):
        raise ConfigError(f"data dir {cfg.data_dir} is not a directory")
    if not os.path.exists(meta_path):
        if os.path.exists(os.path.join(cfg.data_dir, MEMBER_DIR)):
            raise ConfigError(
                f"data dir {cfg.data_dir} has a {MEMBER_DIR}/ dir but no {META_FILE}: "
                "not a raftkv data dir"
            )
        return False
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        have_cluster, have_member = str(meta["cluster_id"]), str(meta["member_id"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read {meta_path}: {e}") from e
    if have_cluster != f"{cfg.cluster_id:x}":
        raise ConfigError(
            f"data dir {cfg.data_dir} belongs to cluster {have_cluster}, not to cluster "
            f"{cfg.cluster_id:x} (check --initial-cluster and --initial-cluster-token)"
        )
    if have_member != f"{cfg.member_id:x}":
        raise ConfigError(
            f"data dir {cfg.data_dir} belongs to member {have_member}, not to member "
            f"{cfg.member_id:x} ({cfg.name} at {cfg.peer_url})"
        )
    return True


def write_meta(cfg: ServeConfig) -> None:
    os.makedirs(cfg.data_dir, exist_ok=True)
    path = os.path.join(cfg.data_dir, META_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_meta(cfg), f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(cfg.data_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _bind(addr: tuple[str, int], what: str) -> socket.socket:
    # Not socket.create_server: its sockets have proto 0, and asyncio (like grpclib) sets
    # TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; accepted sockets inherit it.
    family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
        return sock
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot listen for {what} on {addr[0]}:{addr[1]}: {e.strerror or e}"
        ) from e


# -- running --------------------------------------------------------------------------------------


async def run(cfg: ServeConfig) -> int:
    existing = check_data_dir(cfg)
    client_sock = _bind(cfg.client_addr, "clients")
    holder: list[Node] = []  # the node, once built: the transport's callbacks reach it here
    peers = {
        m.id: parse_url(m.peer_urls[0], "--initial-cluster")
        for m in cfg.members
        if m.id != cfg.member_id
    }

    def on_message(m: Message) -> None:
        if holder:
            holder[0].receive(m)

    def unreachable(peer: int) -> None:
        if holder:
            holder[0].report_unreachable(peer)

    def snapshot_status(peer: int, ok: bool) -> None:
        if holder:
            holder[0].report_snapshot(peer, ok)

    transport = PeerTransport(
        cfg.member_id,
        cfg.cluster_id,
        peers,
        on_message,
        report_unreachable=unreachable,
        on_snapshot_status=snapshot_status,
        max_frame_size=max(DEFAULT_MAX_FRAME, cfg.max_request_bytes + (1 << 16)),
    )
    try:
        try:
            await transport.start(*cfg.peer_addr)
        except OSError as e:
            raise ConfigError(
                f"cannot listen for peers on {cfg.peer_addr[0]}:{cfg.peer_addr[1]}: "
                f"{e.strerror or e}"
            ) from e
        if not existing:
            write_meta(cfg)
        storage = await _open_storage(cfg)
        try:
            return await _run_member(cfg, storage, transport, client_sock, existing, holder)
        finally:
            await storage.close()  # idempotent: node.stop closed it already
    finally:
        await transport.stop()
        client_sock.close()


async def _open_storage(cfg: ServeConfig) -> AsyncDiskStorage:
    voters = tuple(sorted(m.id for m in cfg.members))
    try:
        return await AsyncDiskStorage.open(
            os.path.join(cfg.data_dir, MEMBER_DIR),
            conf_state=ConfState(voters=voters),
            segment_size=cfg.wal_segment_size,
        )
    except DataDirLocked as e:
        raise ConfigError(str(e)) from e
    except CorruptionError as e:
        raise RuntimeFailure(str(e)) from e
    except DiskStorageError as e:
        raise RuntimeFailure(str(e)) from e
    except OSError as e:
        raise RuntimeFailure(f"cannot open data dir {cfg.data_dir}: {e}") from e


async def _run_member(
    cfg: ServeConfig,
    storage: AsyncDiskStorage,
    transport: PeerTransport,
    client_sock: socket.socket,
    existing: bool,
    holder: list[Node],
) -> int:
    sm = KVStateMachine(max_txn_ops=cfg.max_txn_ops)
    node = Node(
        NodeConfig(
            id=cfg.member_id,
            tick_ms=cfg.tick_ms,
            election_tick=cfg.election_tick,
            heartbeat_tick=cfg.heartbeat_tick,
            snapshot_count=cfg.snapshot_count,
            snapshot_keep=min(5_000, max(1, cfg.snapshot_count // 2)),
        ),
        storage,
        transport,
        sm,
    )
    holder.append(node)
    names = {m.id: m.name for m in cfg.members}

    def on_soft_state(lead: int, role: Role, term: int) -> None:
        log.info(
            "node %s (%x) term %d role %s leader %s",
            cfg.name,
            cfg.member_id,
            term,
            role.value,
            f"{names.get(lead, '?')} ({lead:x})" if lead else "none",
        )

    node.on_soft_state.append(on_soft_state)
    service = KVService(
        node,
        sm,
        ServiceConfig(
            cluster_id=cfg.cluster_id,
            members=list(cfg.members),
            max_request_bytes=cfg.max_request_bytes,
            watch_progress_interval=cfg.watch_progress_interval,
        ),
    )
    http = HttpApi(
        service,
        transport,
        name=cfg.name,
        fault_injection=cfg.fault_injection,
        fsyncs=lambda: storage.disk.fsyncs,
    )
    listener = ClientListener(service, http)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    st = node.raw.status()
    log.info(
        "node %s (%x) term %d role %s: starting (%s data dir %s, cluster %x, %d members, "
        "peers on %s:%d)",
        cfg.name,
        cfg.member_id,
        st.term,
        st.role.value,
        "existing" if existing else "new",
        cfg.data_dir,
        cfg.cluster_id,
        len(cfg.members),
        *cfg.peer_addr,
    )
    await listener.start(sock=client_sock)
    await node.start()
    await service.start()
    stopper = asyncio.ensure_future(stop.wait())
    died = asyncio.ensure_future(node.done.wait())
    await asyncio.wait({stopper, died}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    died.cancel()
    code = EXIT_OK
    if node.fatal is not None:
        log.error(
            "node %s (%x): stopping after a fatal error: %s", cfg.name, cfg.member_id, node.fatal
        )
        code = EXIT_RUNTIME
    else:
        st = node.raw.status()
        log.info(
            "node %s (%x) term %d role %s: shutting down",
            cfg.name,
            cfg.member_id,
            st.term,
            st.role.value,
        )
    await listener.stop_accepting()
    await listener.close(timeout=2.0)  # in-flight HTTP requests get 2 s
    await service.stop()
    await node.stop(transfer=code == EXIT_OK, timeout=2.0)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    st = node.raw.status()
    log.info(
        "node %s (%x) term %d role %s: stopped", cfg.name, cfg.member_id, st.term, st.role.value
    )
    return code


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop when it is installed (a dependency; about a third less CPU per request),
    else asyncio's; ``RAFTKV_EVENT_LOOP=asyncio`` forces asyncio's."""
    if os.environ.get("RAFTKV_EVENT_LOOP") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str]) -> int:
    try:
        cfg, level = build_config(argv)
    except ConfigError as e:
        print(f"raftkv serve: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:  # --help
        return e.code if isinstance(e.code, int) else EXIT_OK
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            return runner.run(run(cfg))
    except ConfigError as e:
        print(f"raftkv serve: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeFailure as e:
        print(f"raftkv serve: error: {e}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        return EXIT_OK
