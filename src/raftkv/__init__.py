"""raftkv: a Raft consensus library with a pure, deterministic core, and the replicated key-value
store being built on it.

- ``raftkv.raft``: the core, in the shape of etcd-io/raft's ``RawNode``/``Ready`` (bring your own I/O).
- ``raftkv.sim``: a deterministic simulator that finds bugs by seed.
- ``raftkv.storage``: a durable write-ahead log for the core.

The ``raftkv`` command lives in ``raftkv.cli``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
