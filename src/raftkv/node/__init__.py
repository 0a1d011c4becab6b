"""raftkv.node: the asyncio host that runs a Raft member and drives a state machine."""

from raftkv.node.errors import NodeError, NodeStopped, NotLeaderError, StorageFailed
from raftkv.node.node import AsyncHostStorage, Node, NodeConfig, Transport
from raftkv.node.proposal import Proposal
from raftkv.node.replica import start_replica
from raftkv.node.statemachine import StateMachine
from raftkv.raft.types import Role  # the role passed to on_soft_state callbacks

__all__ = [
    "AsyncHostStorage",
    "Node",
    "NodeConfig",
    "NodeError",
    "NodeStopped",
    "NotLeaderError",
    "Proposal",
    "Role",
    "StateMachine",
    "StorageFailed",
    "Transport",
    "start_replica",
]
