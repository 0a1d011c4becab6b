"""Protocol traces of the core, checked against golden files in testdata/."""

from __future__ import annotations

from pathlib import Path

import pytest
from datadriven import Case, run_file
from harness import Net

from raftkv.raft.describe import describe_message, describe_status
from raftkv.raft.errors import RaftError

DATA = Path(__file__).parent / "testdata"


class Runner:
    def __init__(self) -> None:
        self.net: Net | None = None

    def __call__(self, c: Case) -> str:
        if c.cmd == "net":
            kw: dict[str, object] = {}
            n = 3
            for a in c.args:
                k, v = a.split("=")
                if k == "n":
                    n = int(v)
                else:
                    kw[k] = v == "true" if v in ("true", "false") else int(v)
            self.net = Net(n, **kw)
            return ""
        net = self.net
        assert net is not None, "the first command must be net"
        start = len(net.delivered)
        a = c.args
        try:
            match c.cmd:
                case "campaign":
                    net.campaign(int(a[0]))
                case "propose":
                    net.propose(int(a[0]), a[1].encode())
                case "propose-many":
                    for k in range(int(a[1])):
                        net.nodes[int(a[0])].propose(f"{a[2]}{k}".encode())
                    net.deliver_all()
                case "tick":
                    node = net.nodes[int(a[0])]
                    for _ in range(int(a[1])):
                        node.tick()
                    net.deliver_all()
                case "tick-all":
                    net.tick_all(int(a[0]))
                case "isolate":
                    net.isolate(int(a[0]))
                case "cut":
                    net.cut(int(a[0]), int(a[1]))
                case "heal":
                    net.heal()
                case "transfer":
                    net.nodes[int(a[0])].transfer_leader(int(a[1]))
                    net.deliver_all()
                case "read":
                    net.nodes[int(a[0])].read_index(a[1].encode())
                    net.deliver_all()
                    return "\n".join(
                        [describe_message(m) for m in net.delivered[start:]]
                        + [f"read states of {a[0]}: {net.reads[int(a[0])]}"]
                    )
                case "status":
                    return "\n".join(describe_status(net.nodes[i].status()) for i in net.ids)
                case "logs":
                    out = []
                    for i in net.ids:
                        ents = " ".join(f"{t}/{ix}" + (f"={d.decode()}" if d else "")
                                        for ix, t, d in net.log_data(i))
                        out.append(f"{i}: commit={net.nodes[i].status().commit} {ents}")
                    return "\n".join(out)
                case _:
                    raise ValueError(f"unknown command {c.cmd}")
        except RaftError as e:
            return f"error: {type(e).__name__}: {e}"
        return "\n".join(describe_message(m) for m in net.delivered[start:])


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.txt")))
def test_trace(name: str) -> None:
    run_file(DATA / name, Runner())
