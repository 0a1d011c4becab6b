"""Replay of a simulator trace in a real browser, plus the replay model and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash_helpers import ROOT, wait

from raftkv.dashboard import DashboardThread, Replay, make_app
from raftkv.dashboard.model import TermRuns


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trace") / "seed7.jsonl"
    subprocess.run(
        [sys.executable, "-m", "raftkv", "sim", "--seed", "7", "--ticks", "2000", "--trace",
         str(path)],
        check=True, capture_output=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    return path


def first_election_tick(path: Path) -> int:
    """The tick of the first ``role`` event that makes a node leader, read from the file."""
    with open(path) as f:
        header = json.loads(f.readline())
        for line in f:
            e = json.loads(line)
            if e["ev"] == "role" and e["role"] == "leader":
                return int(e["t_ms"]) // int(header["tick_ms"])
    raise AssertionError("no leader in the trace")


@pytest.fixture(scope="module")
def replay_url(trace: Path) -> Iterator[str]:
    rp = Replay.from_file(str(trace))
    dash = DashboardThread(lambda: make_app(replay=rp), port=0).start()
    try:
        yield dash.url
    finally:
        dash.stop()


def _jump(page: Any, tick: int) -> None:
    page.fill("#jump-tick", str(tick))
    page.click("#jump-btn")
    wait(page, "(t) => document.getElementById('cur-tick').textContent === String(t)", tick,
         f"tick {tick}")  # fmt: skip


def test_replay_shows_first_election_at_its_tick(
    trace: Path, replay_url: str, page: Any, artifacts: Path
) -> None:
    t = first_election_tick(trace)
    assert t > 0
    page.goto(replay_url)
    wait(page, "() => document.querySelectorAll('#cards .card').length === 5", what="5 nodes")
    assert page.text_content("#max-tick") == "2000"
    _jump(page, t - 1)
    assert page.get_attribute("body", "data-leader") == ""
    page.screenshot(path=str(artifacts / "replay-before-election.png"), full_page=True)
    _jump(page, t)
    leader = page.get_attribute("body", "data-leader")
    assert leader, "no leader shown at the first election's tick"
    assert page.locator(f".card[data-node-id='{leader}']").get_attribute("data-role") == "leader"
    assert "leader, term 1" in page.text_content("#leaders")
    page.screenshot(path=str(artifacts / "replay-election.png"), full_page=True)
    # step forward one tick, then play and pause
    page.click("#step-btn")
    wait(page, "(t) => document.getElementById('cur-tick').textContent === String(t)", t + 1)
    page.select_option("#speed", "5")
    page.click("#play-btn")
    wait(page, "(t) => +document.getElementById('cur-tick').textContent > t + 20", t + 1,
         "the replay to advance while playing")  # fmt: skip
    page.click("#play-btn")
    wait(page, "() => document.body.dataset.playing === 'false'")
    # late in the run every node has the committed entries, in term colours
    _jump(page, 1990)
    cells = page.locator(".card .strip i[data-term='1']").count()
    assert cells >= 5 * 40
    page.screenshot(path=str(artifacts / "replay-late.png"), full_page=True)


def test_replay_model_matches_the_trace(trace: Path) -> None:
    rp = Replay.from_file(str(trace))
    t = first_election_tick(trace)
    assert rp.first_leader_tick == t
    assert not any(n["role"] == "leader" for n in rp.frames[t - 1]["nodes"])
    assert sum(n["role"] == "leader" for n in rp.frames[t]["nodes"]) == 1
    # the last frame agrees with the last state records of the trace
    last: dict[int, dict[str, Any]] = {}
    with open(trace) as f:
        for line in f:
            e = json.loads(line)
            if e.get("ev") == "state":
                last[e["node"]] = e
    final = {n["id"]: n for n in rp.frames[-1]["nodes"]}
    for nid, s in last.items():
        for k in ("role", "term", "commit", "last_index"):
            assert final[nid][k] == s[k], (nid, k)
    assert any(f["msgs"] for f in rp.frames)


def test_term_runs() -> None:
    r = TermRuns(1, [[1, 3], [2, 2]])
    assert r.last == 5
    assert r.terms(0, 7) == [0, 1, 1, 1, 2, 2, None, None]
    r.put(5, [[3, 2]])  # a conflicting suffix replaced
    assert r.terms(1, 6) == [1, 1, 1, 2, 3, 3]
    r.truncate(2)
    assert r.last == 2 and r.runs == [[1, 2]]
    r.observe_last(4, 5)
    assert r.terms(1, 4) == [1, 1, 5, 5]
    r.observe_last(3, 6)
    assert r.terms(1, 4) == [1, 1, 5, None]


def test_cli_replay_serves_and_stops(trace: Path, tmp_path: Path) -> None:
    code = "import sys; from raftkv.cli.dashboard import main; sys.exit(main(sys.argv[1:]))"
    p = subprocess.Popen(
        [sys.executable, "-c", code, "--replay", str(trace), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert p.stdout is not None
        line = p.stdout.readline()
        assert line.startswith("raftkv dashboard: http://127.0.0.1:"), line
        url = line.split()[-1]
        from raftkv.localcluster import http_json

        status, info = http_json(url + "api/info")
        assert status == 200 and info["mode"] == "replay" and info["ticks"] == 2001
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(20)
    assert rc == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    r = subprocess.run([sys.executable, "-c", code, "--replay", str(bad)], capture_output=True,
                       text=True, timeout=30)  # fmt: skip
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "error" in r.stderr
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert os.path.exists(trace)


def test_replay_shows_a_log_rolled_back_after_a_partition(
    tmp_path: Path, page: Any, artifacts: Path
) -> None:
    """A partitioned old leader's uncommitted entries are truncated after healing (Raft §5.3):
    the trace says where, and the page shows those cells change term at that tick."""
    path = tmp_path / "seed7-partition.jsonl"
    subprocess.run(
        [sys.executable, "-m", "raftkv", "sim", "--seed", "7", "--ticks", "1500", "--faults",
         "partition", "--trace", str(path)],
        check=True, capture_output=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    with open(path) as f:
        tick_ms = int(json.loads(f.readline())["tick_ms"])
        cut = next(e for e in map(json.loads, f) if e["ev"] == "truncate")
    node, index, tick = cut["node"], cut["lo"], cut["t_ms"] // tick_ms
    old_term = cut["terms"][0][0]
    rp = Replay.from_file(str(path))
    dash = DashboardThread(lambda: make_app(replay=rp), port=0).start()
    try:
        page.goto(dash.url)
        wait(page, "() => document.querySelectorAll('#cards .card').length === 5", what="5 nodes")
        cell = f".card[data-node-id='{node}'] .strip i[data-index='{index}']"
        _jump(page, tick - 1)
        assert page.get_attribute(cell, "data-term") == str(old_term)
        page.screenshot(path=str(artifacts / "replay-before-rollback.png"), full_page=True)
        _jump(page, tick + 20)
        new_term = page.get_attribute(cell, "data-term")  # the new leader's entry took its place
        assert new_term and int(new_term) > old_term, new_term
        page.screenshot(path=str(artifacts / "replay-after-rollback.png"), full_page=True)
    finally:
        dash.stop()
