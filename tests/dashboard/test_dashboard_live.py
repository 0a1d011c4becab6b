"""The live dashboard on a real 3-member cluster, driven from a real browser.

Each test starts from a whole cluster (every member running, no partition, a leader) and waits
on conditions the page shows (≤ 20 s each), never on fixed sleeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dash_helpers import CARDS, ONE_LEADER_HIGHEST_TERM, ROOT, ensure_whole, wait

from raftkv.dashboard import DashboardThread, make_app
from raftkv.localcluster import LocalCluster, http_json


def _open(page: Any, url: str) -> dict[str, Any]:
    page.goto(url)
    leader: dict[str, Any] = wait(page, ONE_LEADER_HIGHEST_TERM, 3, "3 nodes with one leader")
    return leader


def _put_from_page(page: Any, key: str, value: str) -> int:
    page.evaluate("() => { delete document.getElementById('control-msg').dataset.putIndex; }")
    page.fill("#put-key", key)
    page.fill("#put-value", value)
    page.click("#put-btn")
    idx = wait(
        page,
        "() => document.getElementById('control-msg').dataset.putIndex || false",
        what="the put's index",
    )
    return int(idx)


def test_page_shows_three_nodes_and_one_leader(
    live: tuple[LocalCluster, str], page: Any, artifacts: Path
) -> None:
    c, url = live
    ensure_whole(c)
    leader = _open(page, url)
    assert c.leader() == leader["index"]
    assert page.text_content("#mode") == "live · controls"
    # the election timer ring and the leader's progress table are drawn
    wait(page, "() => document.querySelectorAll('.card[data-role=leader] table.prog tr').length === 4",
         what="the leader's match/next table")  # fmt: skip
    page.screenshot(path=str(artifacts / "live-leader.png"), full_page=True)


def test_put_from_page_reaches_every_log_strip(
    live: tuple[LocalCluster, str], page: Any, artifacts: Path
) -> None:
    c, url = live
    ensure_whole(c)
    _open(page, url)
    idx = _put_from_page(page, "dash-key", "v1")
    assert idx > 0
    wait(
        page,
        """(idx) => { const cards = [...document.querySelectorAll('#cards .card')];
          return cards.length === 3 && cards.every(c => +c.dataset.commit >= idx &&
            c.querySelector(`.strip i[data-index="${idx}"]`)?.dataset.term > 0); }""",
        idx,
        f"entry {idx} committed in every node's log strip",
    )
    page.screenshot(path=str(artifacts / "live-put.png"), full_page=True)


def test_partitioned_minority_cannot_commit(
    live: tuple[LocalCluster, str], page: Any, artifacts: Path
) -> None:
    c, url = live
    ensure_whole(c)
    leader = _open(page, url)
    cards = page.evaluate(CARDS)
    follower = next(x for x in cards if x["index"] != leader["index"])
    page.check(f"#pick-{follower['index']}")
    page.click("#partition-btn")
    wait(page, "() => document.getElementById('control-msg').textContent === 'partition ok'",
         what="the partition to be applied")  # fmt: skip
    idx = _put_from_page(page, "during-partition", "v2")
    state = wait(
        page,
        """([idx, minority]) => { const cards = [...document.querySelectorAll('#cards .card')];
          const m = cards.find(c => +c.dataset.index === minority);
          const rest = cards.filter(c => c !== m);
          return m && m.dataset.minority === 'true' && +m.dataset.commit < idx &&
            rest.every(c => +c.dataset.commit >= idx) && m.dataset.commit; }""",
        [idx, follower["index"]],
        "the majority committing while the minority does not",
    )
    assert int(state) < idx
    assert next(x for x in page.evaluate(CARDS) if x["index"] == follower["index"])["cantCommit"]
    # the cut links are drawn
    assert page.locator("#topo line.cut").count() == 2
    page.screenshot(path=str(artifacts / "live-partition.png"), full_page=True)
    page.click("#heal-btn")
    wait(
        page,
        """(idx) => [...document.querySelectorAll('#cards .card')].every(c => +c.dataset.commit >= idx
           && c.dataset.minority !== 'true')""",
        idx,
        "the healed member catching up",
    )
    assert page.locator("#topo line.cut").count() == 0


def test_kill_leader_from_page_shows_new_leader(
    live: tuple[LocalCluster, str], page: Any, artifacts: Path
) -> None:
    c, url = live
    ensure_whole(c)
    old = _open(page, url)
    page.click(f".card[data-index='{old['index']}'] .kill-btn")
    new = wait(
        page,
        """(old) => { const cards = [...document.querySelectorAll('#cards .card')];
          const dead = cards.find(c => +c.dataset.index === old.index);
          const leaders = cards.filter(c => c.dataset.up === 'true' && c.dataset.role === 'leader');
          return dead.dataset.up === 'false' && leaders.length === 1 && +leaders[0].dataset.term > old.term
            && document.body.dataset.leader === leaders[0].dataset.nodeId
            ? {index: +leaders[0].dataset.index, term: +leaders[0].dataset.term} : false; }""",
        old,
        "a new leader after the kill",
    )
    assert new["index"] != old["index"]
    assert not c.members[old["index"]].running()
    page.screenshot(path=str(artifacts / "live-leader-killed.png"), full_page=True)
    page.click(f".card[data-index='{old['index']}'] .restart-btn")
    wait(page, "(i) => document.querySelector(`.card[data-index='${i}']`).dataset.up === 'true'",
         old["index"], "the restarted member back")  # fmt: skip
    idx = _put_from_page(page, "after-restart", "v3")
    wait(
        page,
        "(idx) => [...document.querySelectorAll('#cards .card')].every(c => +c.dataset.commit >= idx)",
        idx,
        "the restarted member catching up",
    )
    page.screenshot(path=str(artifacts / "live-restarted.png"), full_page=True)
    if os.environ.get("RAFTKV_UPDATE_DOCS_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / "dashboard.png"), full_page=True)


def test_transfer_leader_from_page(
    live: tuple[LocalCluster, str], page: Any, artifacts: Path
) -> None:
    c, url = live
    ensure_whole(c)
    old = _open(page, url)
    target = (old["index"] + 1) % 3
    page.select_option("#transfer-to", str(target))
    page.click("#transfer-btn")
    wait(
        page,
        """(t) => { const cards = [...document.querySelectorAll('#cards .card')];
          const leaders = cards.filter(c => c.dataset.up === 'true' && c.dataset.role === 'leader');
          return leaders.length === 1 && +leaders[0].dataset.index === t; }""",
        target,
        "the chosen member leading",
    )
    assert c.leader() == target
    page.screenshot(path=str(artifacts / "live-transferred.png"), full_page=True)


def test_attached_dashboard_is_read_only(live: tuple[LocalCluster, str], page: Any) -> None:
    c, _ = live
    ensure_whole(c)
    urls = [m.client_url for m in c.members]
    dash = DashboardThread(lambda: make_app(urls=urls), port=0).start()
    try:
        _open(page, dash.url)
        assert page.text_content("#mode") == "live · read-only"
        assert not page.is_visible("#controls")
        assert page.locator(".card .kill-btn").count() == 0
        status, body = http_json(dash.url + "api/control/kill", {"index": 0})
        assert status == 403 and "read-only" in body["error"]
        assert all(m.running() for m in c.members)
    finally:
        dash.stop()
