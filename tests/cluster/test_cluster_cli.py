"""``raftkv cluster`` as a process: 3 members up, endpoints answer, SIGINT leaves no child."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cluster_helpers import DEADLINE, alive, children_of, get, port_free, put, wait_until

from raftkv.localcluster import LocalCluster, default_ports, free_ports, http_json


def _free_base() -> int:
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(10000, 35000)
        if all(port_free(p) for pair in default_ports(3, base) for p in pair):
            return base
    raise AssertionError("no free base port")


def test_default_ports_match_etcds_procfile() -> None:
    assert default_ports(3) == [(2379, 2380), (22379, 22380), (32379, 32380)]


def test_raftkv_cluster_runs_resumes_and_stops_cleanly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    base = _free_base()  # the same ports both runs: the cluster id hashes the peer URLs
    for run in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "raftkv", "cluster", "--base-port", str(base),
             "--data-dir", str(data), "--election-timeout", "500"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        kids: list[int] = []
        try:
            assert proc.stdout is not None
            out = []
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line, proc.communicate()
                out.append(line)
                if line.startswith("Ctrl-C"):
                    break
            text = "".join(out)
            urls = [f"http://127.0.0.1:{c}" for c, _ in default_ports(3, base)]
            assert "ETCDCTL_API=3 etcdctl --endpoints=" in text
            assert "raftkv put foo bar" in text
            kids = children_of(proc.pid)
            assert len(kids) == 3
            for url in urls:
                assert http_json(url + "/health") == (200, {"health": "true"})
            if run == 0:
                assert " started " in text
                put(urls[1], "survives", "restart")
            else:
                assert " resumed " in text
                assert get(urls[2], "survives") == "restart"
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=DEADLINE)
            assert proc.returncode == 0
            wait_until(lambda pids=kids: not any(map(alive, pids)), 5.0, "children to exit")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for k in kids:
                if alive(k):
                    # only PIDs this test saw as children of its own subprocess
                    subprocess.run(["kill", "-9", str(k)], check=False)


def test_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    base = _free_base()
    proc = subprocess.Popen(
        [sys.executable, "-m", "raftkv", "cluster", "--base-port", str(base),
         "--data-dir", str(tmp_path / "d"), "--election-timeout", "500"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    kids: list[int] = []
    try:
        wait_until(lambda: len(children_of(proc.pid)) == 3, DEADLINE, "3 members")
        kids = children_of(proc.pid)
        urls = [f"http://127.0.0.1:{c}/health" for c, _ in default_ports(3, base)]

        def answering() -> bool:
            try:
                return all(http_json(u)[0] == 200 for u in urls)
            except OSError:
                return False

        wait_until(answering, DEADLINE, "the members to answer")
        proc.kill()  # SIGKILL: no cleanup in the parent; PR_SET_PDEATHSIG does it
        proc.wait()
        wait_until(lambda: not any(alive(k) for k in kids), DEADLINE, "orphans to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for k in kids:
            if alive(k):
                subprocess.run(["kill", "-9", str(k)], check=False)


def test_a_member_started_from_a_thread_that_ends_keeps_running(tmp_path: Path) -> None:
    client, peer = free_ports(2)
    c = LocalCluster(tmp_path / "c", n=1, ports=[(client, peer)], election_timeout_ms=500)
    try:
        # Linux sends the parent-death signal when the starting *thread* ends
        t = threading.Thread(target=c.start)
        t.start()
        t.join()
        c.wait_ready(DEADLINE)
        proc = c.members[0].proc
        assert proc is not None
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)  # a bounded check that nothing stops it
        assert c.status(0) is not None
    finally:
        c.close()
