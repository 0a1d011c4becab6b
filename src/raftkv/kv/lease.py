"""Leases: granted TTLs with attached keys, expired by the leader through the log (etcd's lessor).

Replicated state (in every snapshot): each lease's id, granted TTL, checkpointed remaining TTL and
attached keys. Leader-local state (never replicated, never in a snapshot): each lease's expiry in
the leader's clock, which exists only after :meth:`Lessor.promote`, as in etcd 3.4 where
followers hold every lease "forever" and a new leader extends every lease on promotion.

The leader alone decides time: it calls :meth:`renew` for keep-alives, asks :meth:`expired` which
leases ran out and proposes a ``LeaseRevokeRequest`` for each; the revoke is what every replica
applies. Nothing here reads a clock: ``now_ms`` is always an argument.
"""

from __future__ import annotations

import msgspec

from raftkv.kv.errors import LeaseExist, LeaseNotFound, TTLTooLarge
from raftkv.kv.types import LeaseCheckpoint

MIN_LEASE_TTL = 2
"""Seconds. etcd's minimum: ceil(1.5 x election timeout) with default timing; smaller is raised."""

MAX_LEASE_TTL = 9_000_000_000
"""Seconds. etcd's MaxLeaseTTL; above it a grant fails with TTLTooLarge."""


class Lease(msgspec.Struct):
    """One lease. ``remaining_ttl`` 0 means "never checkpointed": the full ``ttl`` remains."""

    id: int
    ttl: int
    remaining_ttl: int = 0
    keys: set[bytes] = msgspec.field(default_factory=set)
    expiry_ms: int | None = None  # leader-local; None = forever (follower or not promoted)


class LeaseImage(msgspec.Struct, frozen=True, array_like=True):
    """The replicated part of a lease, as it goes into a snapshot."""

    id: int
    ttl: int
    remaining_ttl: int
    keys: tuple[bytes, ...]


class Lessor:
    """The leases of one replica."""

    def __init__(self) -> None:
        self.leases: dict[int, Lease] = {}
        self.primary = False
        """True between promote() and demote(): only then do leases carry an expiry."""

    def lookup(self, lease_id: int) -> Lease | None:
        return self.leases.get(lease_id)

    def get(self, lease_id: int) -> Lease:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise LeaseNotFound()
        return lease

    # --- applied from the log ------------------------------------------------------------------

    def grant(self, lease_id: int, ttl: int, now_ms: int) -> Lease:
        if ttl > MAX_LEASE_TTL:
            raise TTLTooLarge()
        if lease_id in self.leases:
            raise LeaseExist()
        lease = Lease(lease_id, max(ttl, MIN_LEASE_TTL))
        if self.primary:
            lease.expiry_ms = now_ms + lease.ttl * 1000
        self.leases[lease_id] = lease
        return lease

    def remove(self, lease_id: int) -> Lease:
        return self.leases.pop(lease_id)

    def attach(self, lease_id: int, key: bytes) -> None:
        if lease_id:
            self.get(lease_id).keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self.leases.get(lease_id) if lease_id else None
        if lease is not None:
            lease.keys.discard(key)

    def checkpoint(self, cps: tuple[LeaseCheckpoint, ...]) -> None:
        for cp in cps:
            lease = self.leases.get(cp.id)
            if lease is not None:
                lease.remaining_ttl = cp.remaining_ttl

    # --- leader only (not replicated) ----------------------------------------------------------

    def promote(self, extend_ms: int, now_ms: int) -> None:
        """Become primary: every lease expires ``extend_ms`` after its remaining TTL from now."""
        self.primary = True
        for lease in self.leases.values():
            remaining = lease.remaining_ttl or lease.ttl
            lease.expiry_ms = now_ms + extend_ms + remaining * 1000

    def demote(self) -> None:
        self.primary = False
        for lease in self.leases.values():
            lease.expiry_ms = None

    def renew(self, lease_id: int, now_ms: int) -> int:
        """Keep-alive: restart the lease's full TTL from ``now_ms``; returns the TTL (seconds)."""
        lease = self.get(lease_id)
        lease.expiry_ms = now_ms + lease.ttl * 1000
        return lease.ttl

    def remaining(self, lease: Lease, now_ms: int) -> int:
        """Remaining TTL in whole seconds (rounded up), as etcd's TimeToLive shows it."""
        if lease.expiry_ms is None:
            return lease.remaining_ttl or lease.ttl
        return max(0, -((now_ms - lease.expiry_ms) // 1000))

    def expired(self, now_ms: int) -> list[int]:
        """Ids of leases whose expiry has passed, soonest first (primary only)."""
        due = [
            (lease.expiry_ms, lease.id)
            for lease in self.leases.values()
            if lease.expiry_ms is not None and lease.expiry_ms <= now_ms
        ]
        return [lease_id for _, lease_id in sorted(due)]

    def checkpoints(self, now_ms: int) -> tuple[LeaseCheckpoint, ...]:
        """The remaining TTL of every expiring lease, for the leader to propose as a checkpoint."""
        return tuple(
            LeaseCheckpoint(lease.id, self.remaining(lease, now_ms))
            for lease in sorted(self.leases.values(), key=lambda le: le.id)
            if lease.expiry_ms is not None
        )

    # --- snapshot ------------------------------------------------------------------------------

    def image(self) -> list[LeaseImage]:
        return [
            LeaseImage(le.id, le.ttl, le.remaining_ttl, tuple(sorted(le.keys)))
            for le in sorted(self.leases.values(), key=lambda le: le.id)
        ]

    def load(self, images: list[LeaseImage]) -> None:
        """Replace every lease; all are held forever until the next promote (as after a restart)."""
        self.primary = False
        self.leases = {im.id: Lease(im.id, im.ttl, im.remaining_ttl, set(im.keys)) for im in images}
