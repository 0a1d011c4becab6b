"""The embedded-library example runs as written: three processes, one replicated counter."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "replicated_counter.py"


def free_base_port() -> int:
    for _ in range(50):
        socks = []
        try:
            s0 = socket.socket()
            s0.bind(("127.0.0.1", 0))
            base = s0.getsockname()[1]
            socks.append(s0)
            for i in (1, 2, 3):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no three consecutive free ports")


def test_three_members_agree_on_the_counter(tmp_path: Path) -> None:
    base = free_base_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(EXAMPLE), str(i), "50", str(base)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for i in (1, 2, 3)
    ]
    try:
        outs = [p.communicate(timeout=60)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert sorted(o.strip() for o in outs) == [f"member {i}: counter = 150" for i in (1, 2, 3)]
    assert all((tmp_path / f"counter-{i}").is_dir() for i in (1, 2, 3))  # durable logs
