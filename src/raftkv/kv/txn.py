"""KV operations on the store, with etcd 3.4's validation and txn rules (etcd's applierV3).

A txn runs in three steps, as etcd's ``applyTxn`` does, so it either fails before any write or
applies whole: (1) evaluate every compare on the chosen path, nested ones included, against the
state *before* the txn; (2) check the chosen path's puts (lease exists, key exists for
ignore_value/ignore_lease) and ranges (revision not compacted, not in the future) against that
same state; (3) execute the path in one write transaction, so every write shares one revision
and ranges see the writes made before them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from raftkv.kv.errors import (
    DuplicateKey,
    EmptyKey,
    InvalidSortOption,
    KeyNotFound,
    LeaseNotFound,
    LeaseProvided,
    TooManyOps,
    ValueProvided,
)
from raftkv.kv.lease import Lessor
from raftkv.kv.mvcc import MVCCStore, WriteTxn
from raftkv.kv.types import (
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    KeyValue,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    ResponseHeader,
    ResponseOp,
    SortOrder,
    SortTarget,
    TxnRequest,
    TxnResponse,
)

MAX_TXN_OPS = 128
"""etcd's default --max-txn-ops."""

# --- validation (etcd's v3rpc key.go checks, done before proposing; repeated here on apply) -----


def check_range(r: RangeRequest) -> None:
    if not r.key:
        raise EmptyKey()
    if r.sort_order not in SortOrder._value2member_map_:
        raise InvalidSortOption()
    if r.sort_target not in SortTarget._value2member_map_:
        raise InvalidSortOption()


def check_put(r: PutRequest) -> None:
    if not r.key:
        raise EmptyKey()
    if r.ignore_value and r.value:
        raise ValueProvided()
    if r.ignore_lease and r.lease:
        raise LeaseProvided()


def check_delete(r: DeleteRangeRequest) -> None:
    if not r.key:
        raise EmptyKey()


def check_txn(r: TxnRequest, max_txn_ops: int = MAX_TXN_OPS) -> None:
    """Op counts, every op, and no key written twice on any path (etcd's checkIntervals)."""
    _check_txn_ops(r, max_txn_ops)
    _check_intervals_level(r.success)
    _check_intervals_level(r.failure)


def _check_txn_ops(r: TxnRequest, max_txn_ops: int) -> None:
    if len(r.compare) > max_txn_ops or len(r.success) > max_txn_ops or len(r.failure) > max_txn_ops:
        raise TooManyOps()
    for c in r.compare:
        if not c.key:
            raise EmptyKey()
    for op in r.success + r.failure:
        match op:
            case RangeRequest():
                check_range(op)
            case PutRequest():
                check_put(op)
            case DeleteRangeRequest():
                check_delete(op)
            case TxnRequest():
                _check_txn_ops(op, max_txn_ops)


class _Dels:
    """A set of key intervals (etcd's adt.IntervalTree, linear: txns are at most 128 ops)."""

    def __init__(self) -> None:
        self.spans: list[tuple[bytes, bytes]] = []  # (key, range_end) with etcd's end rules

    def add(self, key: bytes, range_end: bytes) -> None:
        self.spans.append((key, range_end))

    def union(self, other: _Dels) -> None:
        self.spans.extend(other.spans)

    def contains(self, k: bytes) -> bool:
        for key, end in self.spans:
            if not end:
                if k == key:
                    return True
            elif key <= k and (end == b"\x00" or k < end):
                return True
        return False


def _check_intervals_level(ops: tuple[RequestOp, ...]) -> tuple[set[bytes], _Dels]:
    """etcd 3.4 ``checkIntervals``: puts unique per path and never inside a delete's range."""
    dels = _Dels()
    for op in ops:
        if isinstance(op, DeleteRangeRequest):
            dels.add(op.key, op.range_end)
    puts: set[bytes] = set()
    for op in ops:
        if not isinstance(op, TxnRequest):
            continue
        puts_then, dels_then = _check_intervals_level(op.success)
        puts_else, dels_else = _check_intervals_level(op.failure)
        for k in puts_then:
            if k in puts or dels.contains(k):
                raise DuplicateKey()
            puts.add(k)
        for k in puts_else:
            # then and else exclude each other: the same key in both is fine
            if (k in puts and k not in puts_then) or dels.contains(k):
                raise DuplicateKey()
            puts.add(k)
        dels.union(dels_then)
        dels.union(dels_else)
    for op in ops:
        if isinstance(op, PutRequest):
            if op.key in puts or dels.contains(op.key):
                raise DuplicateKey()
            puts.add(op.key)
    return puts, dels


# --- compare -----------------------------------------------------------------------------------


def _cmp(a: int | bytes, b: int | bytes) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def compare_kv(c: Compare, kv: KeyValue) -> bool:
    match c.target:
        case CompareTarget.VALUE:
            result = _cmp(kv.value, c.value)
        case CompareTarget.CREATE:
            result = _cmp(kv.create_revision, c.create_revision)
        case CompareTarget.MOD:
            result = _cmp(kv.mod_revision, c.mod_revision)
        case CompareTarget.VERSION:
            result = _cmp(kv.version, c.version)
        case CompareTarget.LEASE:
            result = _cmp(kv.lease, c.lease)
        case _:
            return True
    match c.result:
        case CompareResult.EQUAL:
            return result == 0
        case CompareResult.NOT_EQUAL:
            return result != 0
        case CompareResult.GREATER:
            return result > 0
        case CompareResult.LESS:
            return result < 0
    return True


def apply_compare(store: MVCCStore, c: Compare) -> bool:
    """True if every key of the range passes; a missing key compares as an empty kv (not VALUE)."""
    kvs = store.range_at(c.key, c.range_end, store.rev)
    if not kvs:
        if c.target == CompareTarget.VALUE:
            return False  # etcd: a value compare on a missing key always fails
        return compare_kv(c, KeyValue(c.key))
    return all(compare_kv(c, kv) for kv in kvs)


# --- the applier -------------------------------------------------------------------------------


class Applier:
    """Executes KV requests against one store and lessor. Raises ``KVError`` on bad requests."""

    def __init__(self, store: MVCCStore, lessor: Lessor, max_txn_ops: int = MAX_TXN_OPS) -> None:
        self.store = store
        self.lessor = lessor
        self.max_txn_ops = max_txn_ops

    def header(self, rev: int | None = None) -> ResponseHeader:
        return ResponseHeader(revision=self.store.rev if rev is None else rev)

    # --- range --------------------------------------------------------------------------------

    def range(self, r: RangeRequest, txn: WriteTxn | None = None) -> RangeResponse:
        check_range(r)
        current = self.store.rev if txn is None else txn.rev
        rev = self.store.check_rev(r.revision, current)
        kvs = self.store.range_at(r.key, r.range_end, rev)
        count = len(kvs)
        if r.count_only:
            return RangeResponse(self.header(current), (), False, count)
        if r.max_mod_revision:
            kvs = [kv for kv in kvs if kv.mod_revision <= r.max_mod_revision]
        if r.min_mod_revision:
            kvs = [kv for kv in kvs if kv.mod_revision >= r.min_mod_revision]
        if r.max_create_revision:
            kvs = [kv for kv in kvs if kv.create_revision <= r.max_create_revision]
        if r.min_create_revision:
            kvs = [kv for kv in kvs if kv.create_revision >= r.min_create_revision]
        order = r.sort_order
        if r.sort_target != SortTarget.KEY and order == SortOrder.NONE:
            order = SortOrder.ASCEND  # etcd: a non-key target sorts ascending by default
        if order != SortOrder.NONE:
            kvs.sort(key=_SORT_KEYS[SortTarget(r.sort_target)], reverse=order == SortOrder.DESCEND)
        more = False
        if r.limit > 0 and len(kvs) > r.limit:
            kvs = kvs[: r.limit]
            more = True
        if r.keys_only:
            kvs = [KeyValue(kv.key, kv.create_revision, kv.mod_revision, kv.version, b"", kv.lease)
                   for kv in kvs]  # fmt: skip
        return RangeResponse(self.header(current), tuple(kvs), more, count)

    # --- put / delete -------------------------------------------------------------------------

    def _check_put_state(self, r: PutRequest, txn: WriteTxn | None) -> KeyValue | None:
        prev = self.store.get(r.key) if txn is None else txn.get(r.key)
        if r.lease and self.lessor.lookup(r.lease) is None:
            raise LeaseNotFound()
        if (r.ignore_value or r.ignore_lease) and prev is None:
            raise KeyNotFound()
        return prev

    def put(self, r: PutRequest, txn: WriteTxn | None = None) -> PutResponse:
        check_put(r)
        prev = self._check_put_state(r, txn)
        own = txn is None
        w = self.store.begin() if txn is None else txn
        value = prev.value if r.ignore_value and prev is not None else r.value
        lease = prev.lease if r.ignore_lease and prev is not None else r.lease
        w.put(r.key, value, lease)
        if prev is not None and prev.lease != lease:
            self.lessor.detach(prev.lease, r.key)
        self.lessor.attach(lease, r.key)
        rev = w.end() if own else w.rev
        return PutResponse(self.header(rev), prev if r.prev_kv else None)

    def delete_range(
        self, r: DeleteRangeRequest, txn: WriteTxn | None = None
    ) -> DeleteRangeResponse:
        check_delete(r)
        own = txn is None
        w = self.store.begin() if txn is None else txn
        deleted = w.delete_range(r.key, r.range_end)
        for kv in deleted:
            self.lessor.detach(kv.lease, kv.key)
        rev = w.end() if own else w.rev
        return DeleteRangeResponse(
            self.header(rev), len(deleted), tuple(deleted) if r.prev_kv else ()
        )

    # --- txn ----------------------------------------------------------------------------------

    def txn(self, r: TxnRequest) -> TxnResponse:
        check_txn(r, self.max_txn_ops)
        path: list[bool] = []
        self._compare_path(r, path)
        self._precheck(r, iter(path))
        w = self.store.begin()
        resp = self._exec(w, r, iter(path))
        rev = w.end()
        return TxnResponse(self.header(rev), resp.succeeded, resp.responses)

    def _compare_path(self, r: TxnRequest, path: list[bool]) -> None:
        ok = all(apply_compare(self.store, c) for c in r.compare)
        path.append(ok)
        for op in r.success if ok else r.failure:
            if isinstance(op, TxnRequest):
                self._compare_path(op, path)

    def _precheck(self, r: TxnRequest, path: Iterator[bool]) -> None:
        ok = next(path)
        for op in r.success if ok else r.failure:
            match op:
                case PutRequest():
                    self._check_put_state(op, None)
                case RangeRequest() if op.revision:
                    self.store.check_rev(op.revision)
                case TxnRequest():
                    self._precheck(op, path)
                case _:
                    pass

    def _exec(self, w: WriteTxn, r: TxnRequest, path: Iterator[bool]) -> TxnResponse:
        ok = next(path)
        out: list[ResponseOp] = []
        for op in r.success if ok else r.failure:
            match op:
                case RangeRequest():
                    out.append(self.range(op, w))
                case PutRequest():
                    out.append(self.put(op, w))
                case DeleteRangeRequest():
                    out.append(self.delete_range(op, w))
                case TxnRequest():
                    out.append(self._exec(w, op, path))
        return TxnResponse(self.header(w.rev), ok, tuple(out))


_SORT_KEYS: dict[SortTarget, Callable[[KeyValue], int | bytes]] = {
    SortTarget.KEY: lambda kv: kv.key,
    SortTarget.VERSION: lambda kv: kv.version,
    SortTarget.CREATE: lambda kv: kv.create_revision,
    SortTarget.MOD: lambda kv: kv.mod_revision,
    SortTarget.VALUE: lambda kv: kv.value,
}
