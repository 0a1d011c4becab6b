"""Differential test: one script of etcdctl commands against a fresh 3-member raftkv cluster and a
fresh 3-member etcd 3.4 cluster prints the same transcript byte for byte — stdout, error lines
and exit codes — once the values that differ by nature are masked: member, cluster and lease
ids, raft term and index, db size, durations, remaining lease TTL, URLs and ports, and which
member leads. Revisions, versions, counts, values and error texts are compared as they are.

Not in the script: ``member list``, whose lines etcd sorts by member id, which differs between
any two clusters (test_etcdctl.py checks its contents)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from etcd_helpers import (
    EtcdCluster,
    WatchProc,
    error_lines,
    etcdctl,
    raftkv_endpoints,
    start_raftkv,
)

pytestmark = pytest.mark.usefixtures("etcdctl_bin")


@dataclass(frozen=True)
class Step:
    args: tuple[str, ...]
    stdin: str | None = None
    capture: str | None = None  # regex whose group 1 becomes {V}
    watch: bool = False
    sort: bool = False  # lines come in no fixed order (concurrent per-endpoint checks)


def S(*args: str, **kw: object) -> Step:
    return Step(tuple(args), **kw)  # type: ignore[arg-type]


TXN_OK = 'value("a") = "1"\nmod("b") > "0"\n\nput x yes\nget a\n\nput x no\n\n'
TXN_FAIL = 'value("a") = "2"\nversion("b") = "1"\n\nput x yes\n\nput x no\ndel b\nget a\n\n'
TXN_MANY = "\n" + "".join(f"put m{i} v\n" for i in range(129)) + "\n\n"
TXN_DUP = "\nput d 1\nput d 2\n\n\n"

SCRIPT = [
    S("put", "foo", "bar"),
    S("put", "foo2", "baz"),
    S("put", "fop", "x", "-w", "json"),
    S("put", "foo", "bar2", "--prev-kv"),
    S("get", "foo"),
    S("get", "foo", "--prefix"),
    S("get", "foo", "fop"),
    S("get", "foo", "--from-key", "--keys-only"),
    S("get", "foo", "--prefix", "--limit=1"),
    S("get", "foo", "--prefix", "--limit=1", "-w", "json"),
    S("get", "foo", "--rev=2"),
    S("get", "foo", "--prefix", "--sort-by=VALUE", "--order=DESCEND"),
    S("get", "f", "--prefix", "--sort-by=CREATE", "--order=ASCEND", "--keys-only"),
    S("get", "f", "--prefix", "--print-value-only"),
    S("get", "foo", "--prefix", "-w", "json"),
    S("get", "foo", "-w", "fields"),
    S("get", "nope", "-w", "json"),
    S("get", "foo", "--rev=1000"),
    S("put", "big", "x" * (70 * 1024)),
    S("put", "a", "1"),
    S("put", "b", "2"),
    S("txn", "-i", stdin=TXN_OK),
    S("txn", "-i", stdin=TXN_FAIL),
    S("txn", "-i", "-w", "json", stdin=TXN_OK),
    S("txn", "-i", stdin=TXN_MANY),
    S("txn", "-i", stdin=TXN_DUP),
    S("del", "foo2", "--prev-kv"),
    S("del", "fo", "--prefix"),
    S("del", "nothing"),
    S("get", "", "--from-key", "-w", "fields"),
    S("lease", "grant", "100", capture=r"lease ([0-9a-f]+) granted"),
    S("put", "--lease={V}", "lk", "lv"),
    S("get", "lk", "-w", "json"),
    S("lease", "timetolive", "{V}", "--keys"),
    S("lease", "keep-alive", "--once", "{V}"),
    S("lease", "list"),
    S("lease", "revoke", "{V}"),
    S("get", "lk"),
    S("lease", "timetolive", "{V}"),
    S("lease", "revoke", "{V}"),
    S("lease", "keep-alive", "--once", "{V}"),
    S("put", "--lease=1234", "lk", "lv"),
    S("watch", "--rev=2", "--prefix", "--prev-kv", "f", watch=True),
    S("compact", "6"),
    S("get", "foo", "--rev=3"),
    S("get", "a", "--rev=6"),
    S("compact", "4"),
    S("watch", "--rev=3", "foo", watch=True),
    S("defrag", sort=True),
    S("endpoint", "hashkv", sort=True),
    S("endpoint", "hashkv", "-w", "json"),
    S("endpoint", "hashkv", "--rev=3", sort=True),
    S("endpoint", "hashkv", "--rev=1000", sort=True),
    S("endpoint", "status"),
    S("endpoint", "health", sort=True),
    S("endpoint", "health", "-w", "json"),
]

_JSON_NUM = re.compile(
    r'"(cluster_id|member_id|raft_term|ClusterID|MemberID|RaftTerm|ID|id|lease|Lease|leader'
    r'|raftIndex|raftTerm|raftAppliedIndex|dbSize|dbSizeInUse|hash)"(\s*:\s*)"?-?\d+"?'
)


def mask(text: str, lease: str | None) -> str:
    if lease:
        text = text.replace(lease, "<LEASE>")
    text = _JSON_NUM.sub(r'"\1"\2<N>', text)
    text = re.sub(r"https?://127\.0\.0\.1:\d+", "<URL>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "<EP>", text)
    text = re.sub(r"took = [0-9.]+[µnm]?s", "took = <D>", text)
    text = re.sub(r'"took":"[0-9.]+[µnm]?s"', '"took":"<D>"', text)
    text = re.sub(r"remaining\(\d+s\)", "remaining(<N>s)", text)
    out = []
    for line in text.splitlines():
        f = line.split(", ")
        if line.startswith("<EP>, ") and len(f) == 10:  # endpoint status, simple format
            f[1], f[3], f[4], f[6], f[7], f[8] = "<ID>", "<SIZE>", "<LEADER?>", "<T>", "<I>", "<I>"
            line = ", ".join(f)
        elif line.startswith("<EP>, ") and len(f) == 2 and f[1].isdigit():  # endpoint hashkv
            line = "<EP>, <HASH>"
        out.append(line)
    return "\n".join(out)


def run_script(eps: str) -> str:
    lines: list[str] = []
    var: str | None = None
    for step in SCRIPT:
        args = [a.replace("{V}", var or "") for a in step.args]
        shown = " ".join(a if len(a) < 40 else f"<{len(a)} bytes>" for a in args)
        lines.append(f"$ etcdctl {shown}")
        if step.watch:
            w = WatchProc(eps, *args[1:])
            try:
                out = w.idle_lines(idle=1.5, timeout=8.0)
            finally:
                w.stop()
            lines += out
            lines += [f"stderr: {e}" for e in error_lines(w.stderr)]
            continue
        r = etcdctl(eps, *args, input=step.stdin)
        out, err = r.stdout.splitlines(), error_lines(r.stderr)
        if step.sort:
            out, err = sorted(out), sorted(err)
        lines += out
        lines += [f"stderr: {e}" for e in err]
        lines.append(f"exit {r.returncode}")
        if step.capture:
            m = re.search(step.capture, r.stdout)
            assert m, (step, r.stdout, r.stderr)
            var = m.group(1)
            lines.append("(lease captured)")
    text = "\n".join(lines) + "\n"
    return mask(text, var)


def test_same_transcript_as_etcd(tmp_path: Path, etcd_cluster: EtcdCluster) -> None:
    rkv = start_raftkv(tmp_path / "rkv")
    try:
        got = run_script(raftkv_endpoints(rkv))
    finally:
        rkv.kill_all()
    want = run_script(etcd_cluster.endpoints)
    (tmp_path / "etcd.txt").write_text(want)
    (tmp_path / "raftkv.txt").write_text(got)
    if got != want:
        diff = subprocess.run(
            ["diff", "-u", str(tmp_path / "etcd.txt"), str(tmp_path / "raftkv.txt")],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        pytest.fail(f"raftkv's transcript differs from etcd's:\n{diff}")
    assert "exit 1" in want and "mvcc: required revision has been compacted" in want
