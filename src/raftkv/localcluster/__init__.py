"""A local cluster of real ``raftkv serve`` processes: spawn, stop, kill, restart by PID.

``LocalCluster`` knows nothing of raftkv's internals: it runs ``python -m raftkv serve`` per
member, reads each member's ``/raftkv/v1/status`` over HTTP (urllib) and injects faults through
the members' debug API (``--enable-fault-injection``).
"""

from raftkv.localcluster.cluster import (
    ClusterError,
    LocalCluster,
    MemberProcess,
    default_ports,
    free_ports,
    http_json,
)

__all__ = [
    "ClusterError",
    "LocalCluster",
    "MemberProcess",
    "default_ports",
    "free_ports",
    "http_json",
]
