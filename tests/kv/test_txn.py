"""Txn: compares, branches, nesting, one revision per txn, duplicate keys, op limits."""

from __future__ import annotations

from kv_harness import KV

from raftkv.kv import (
    Compacted,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    DeleteRangeResponse,
    DuplicateKey,
    FutureRev,
    KVStateMachine,
    LeaseNotFound,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    RequestOp,
    TooManyOps,
    TxnRequest,
    TxnResponse,
)

EQ, NE, GT, LT = (CompareResult.EQUAL, CompareResult.NOT_EQUAL, CompareResult.GREATER,
                  CompareResult.LESS)  # fmt: skip
VALUE, VERSION, CREATE, MOD, LEASE = (CompareTarget.VALUE, CompareTarget.VERSION,
                                      CompareTarget.CREATE, CompareTarget.MOD, CompareTarget.LEASE)  # fmt: skip


def txn(
    kv: KV,
    compare: tuple[Compare, ...],
    success: tuple[RequestOp, ...] = (),
    failure: tuple[RequestOp, ...] = (),
) -> TxnResponse:
    res = kv.ok(TxnRequest(compare, success, failure))
    assert isinstance(res, TxnResponse)
    return res


def test_compare_value_equal_takes_then_branch(kv: KV) -> None:
    kv.put(b"key", b"val")  # 2
    r = txn(kv, (Compare(EQ, VALUE, b"key", value=b"val"),),
            (PutRequest(b"key", b"then"),), (PutRequest(b"key", b"else"),))  # fmt: skip
    assert r.succeeded and r.header.revision == 3
    assert r.responses == (PutResponse(r.header),)
    assert kv.one(b"key").value == b"then"  # type: ignore[union-attr]
    r = txn(kv, (Compare(EQ, VALUE, b"key", value=b"val"),),
            (PutRequest(b"key", b"then"),), (PutRequest(b"key", b"else", prev_kv=True),))  # fmt: skip
    assert not r.succeeded and r.header.revision == 4
    assert r.responses[0].prev_kv.value == b"then"  # type: ignore[union-attr]


def test_compare_targets_and_results(kv: KV) -> None:
    kv.grant(60, 9)
    kv.put(b"k", b"b", lease=9)  # rev 2, create 2
    kv.put(b"k", b"b")  # rev 3, version 2, lease 0
    kv.put(b"k", b"b", lease=9)  # rev 4, version 3

    def check(c: Compare) -> bool:
        before = kv.rev
        res = txn(kv, (c,), (RangeRequest(b"k"),))
        assert kv.rev == before  # a read-only txn adds no revision
        return res.succeeded

    assert check(Compare(EQ, VERSION, b"k", version=3))
    assert check(Compare(GT, VERSION, b"k", version=2))
    assert not check(Compare(LT, VERSION, b"k", version=3))
    assert check(Compare(EQ, CREATE, b"k", create_revision=2))
    assert check(Compare(EQ, MOD, b"k", mod_revision=4))
    assert check(Compare(NE, MOD, b"k", mod_revision=3))
    assert check(Compare(EQ, LEASE, b"k", lease=9))
    assert check(Compare(LT, VALUE, b"k", value=b"c"))
    assert check(Compare(GT, VALUE, b"k", value=b"a"))
    # a missing key: create_revision 0 / version 0 compare as such; a value compare fails
    assert check(Compare(EQ, CREATE, b"missing", create_revision=0))
    assert check(Compare(EQ, VERSION, b"missing", version=0))
    assert not check(Compare(EQ, VALUE, b"missing", value=b""))
    assert not check(Compare(NE, VALUE, b"missing", value=b"x"))


def test_compare_on_a_range_applies_to_every_key(kv: KV) -> None:
    kv.put(b"p/a", b"1")
    kv.put(b"p/b", b"1")
    assert txn(kv, (Compare(EQ, VALUE, b"p/", b"p0", value=b"1"),)).succeeded
    kv.put(b"p/c", b"2")
    assert not txn(kv, (Compare(EQ, VALUE, b"p/", b"p0", value=b"1"),)).succeeded


def test_all_writes_share_one_revision_and_reads_see_them(kv: KV) -> None:
    kv.put(b"a", b"0")  # 2
    kv.put(b"gone", b"0")  # 3
    r = txn(kv, (), (PutRequest(b"a", b"1"), PutRequest(b"b", b"2"),
                     DeleteRangeRequest(b"gone"), RangeRequest(b"a", b"c")))  # fmt: skip
    assert r.succeeded and r.header.revision == 4 and kv.rev == 4
    rng = r.responses[3]
    assert isinstance(rng, RangeResponse)
    assert [(x.key, x.value, x.mod_revision) for x in rng.kvs] == [(b"a", b"1", 4), (b"b", b"2", 4)]
    assert r.responses[2] == DeleteRangeResponse(r.header, 1)
    assert kv.one(b"a").version == 2  # type: ignore[union-attr]


def test_nested_txn_compares_see_the_state_before_the_txn(kv: KV) -> None:
    kv.put(b"x", b"old")  # 2
    inner = TxnRequest((Compare(EQ, VALUE, b"x", value=b"old"),),
                       (PutRequest(b"inner", b"then"),), (PutRequest(b"inner", b"else"),))  # fmt: skip
    r = txn(kv, (), (DeleteRangeRequest(b"x"), inner))
    assert r.header.revision == 3
    nested = r.responses[1]
    assert isinstance(nested, TxnResponse) and nested.succeeded
    assert kv.one(b"inner").value == b"then"  # type: ignore[union-attr]
    assert kv.one(b"x") is None


def test_duplicate_keys(kv: KV) -> None:
    dup = kv.apply(TxnRequest((), (PutRequest(b"a"), PutRequest(b"a"))))
    assert isinstance(dup, DuplicateKey)
    assert str(dup) == "etcdserver: duplicate key given in txn request"
    # a put inside a deleted range
    assert isinstance(kv.apply(TxnRequest((), (DeleteRangeRequest(b"a", b"c"), PutRequest(b"b")))),
                      DuplicateKey)  # fmt: skip
    # a nested put of the same key
    nested = TxnRequest((), (PutRequest(b"a"),))
    assert isinstance(kv.apply(TxnRequest((), (PutRequest(b"a"), nested))), DuplicateKey)
    # then and else of one nested txn may write the same key
    both = TxnRequest((), (PutRequest(b"a"),), (PutRequest(b"a"),))
    assert isinstance(kv.apply(TxnRequest((), (both,))), TxnResponse)
    # success and failure of the top level are checked separately
    assert isinstance(
        kv.apply(TxnRequest((), (PutRequest(b"a"),), (PutRequest(b"a"),))), TxnResponse
    )
    # two overlapping deletes are allowed, as in etcd 3.4
    ok = kv.apply(TxnRequest((), (DeleteRangeRequest(b"a", b"z"), DeleteRangeRequest(b"b"))))
    assert isinstance(ok, TxnResponse)


def test_too_many_ops() -> None:
    kv = KV()
    ops = tuple(PutRequest(b"k%d" % i) for i in range(129))
    err = kv.apply(TxnRequest((), ops))
    assert isinstance(err, TooManyOps)
    assert (
        str(err) == "etcdserver: too many operations in txn request"
        and err.code == "INVALID_ARGUMENT"
    )
    assert isinstance(kv.apply(TxnRequest((), ops[:128])), TxnResponse)
    small = KV(KVStateMachine(max_txn_ops=2))
    assert isinstance(small.apply(TxnRequest((), ops[:3])), TooManyOps)
    nested = TxnRequest((), (TxnRequest((), ops[:3]),))
    assert isinstance(small.apply(nested), TooManyOps)


def test_a_failing_txn_writes_nothing(kv: KV) -> None:
    kv.put(b"a", b"1")  # 2
    kv.put(b"b", b"1")  # 3
    kv.compact(3)
    bad_lease = TxnRequest((), (PutRequest(b"a", b"2"), PutRequest(b"c", lease=42)))
    assert isinstance(kv.apply(bad_lease), LeaseNotFound)
    old_read = TxnRequest((), (PutRequest(b"a", b"2"), RangeRequest(b"a", revision=2)))
    assert isinstance(kv.apply(old_read), Compacted)
    future_read = TxnRequest((), (PutRequest(b"a", b"2"), RangeRequest(b"a", revision=4)))
    assert isinstance(kv.apply(future_read), FutureRev)
    assert kv.rev == 3 and kv.one(b"a").value == b"1"  # type: ignore[union-attr]
