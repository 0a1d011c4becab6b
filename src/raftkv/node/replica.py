"""``start_replica``: one call that embeds a replicated state machine in an asyncio program.

It opens the durable log (or keeps it in memory), starts the TCP peer transport and the node,
and wires them together — what ``raftkv serve`` does for the KV store, for any object with
``apply`` / ``snapshot`` / ``restore``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from raftkv.node.node import AsyncHostStorage, Node, NodeConfig
from raftkv.node.statemachine import StateMachine
from raftkv.raft.storage import HostStorage, MemoryStorage
from raftkv.raft.types import ConfState
from raftkv.storage import AsyncDiskStorage
from raftkv.transport import PeerTransport


async def start_replica(
    node_id: int,
    peers: Mapping[int, tuple[str, int]],
    state_machine: StateMachine,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    cluster_id: int = 1,
    **config: Any,
) -> Node:
    """Start member ``node_id`` of the cluster ``peers`` (id -> (host, port), itself included).

    Args:
        state_machine: your object; ``apply`` gets committed entries in order.
        data_dir: where the WAL and snapshots live; None keeps them in memory (no durability).
        cluster_id: refuse peers of other clusters.
        config: more ``NodeConfig`` fields (``tick_ms``, ``election_tick``, ``snapshot_count``...).

    Returns:
        The running ``Node``: ``await node.propose(data)``, ``await node.read_index()``,
        ``await node.stop()``.
    """
    conf = ConfState(voters=tuple(sorted(peers)))
    storage: HostStorage | AsyncHostStorage
    if data_dir is None:
        storage = MemoryStorage(conf)
    else:
        storage = await AsyncDiskStorage.open(data_dir, conf_state=conf)
    node: Node | None = None

    def deliver(m: Any) -> None:
        if node is not None:
            node.receive(m)

    transport = PeerTransport(
        node_id,
        cluster_id,
        {k: v for k, v in peers.items() if k != node_id},
        deliver,
        report_unreachable=lambda p: node.report_unreachable(p) if node else None,
        on_snapshot_status=lambda p, ok: node.report_snapshot(p, ok) if node else None,
    )
    node = Node(NodeConfig(id=node_id, **config), storage, transport, state_machine)
    host, port = peers[node_id]
    await transport.start(host, port)
    node.on_stop.append(transport.stop)
    await node.start()
    return node
