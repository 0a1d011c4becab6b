"""Dashboard lag: from a node's event to its rendering in the page, with 7 members under load.

Starts a 7-member ``LocalCluster`` (real ``raftkv serve`` processes), ``raftkv dashboard
--endpoints ...`` as its own process, a load-generator process writing about --rate puts/s
through ``raftkv.client``, and Debian's Chromium (Playwright) on the page with ``?ack=1``. For
every rendered frame that folds in a newer event, the page records ``Date.now() - ev_ms``, where
``ev_ms`` is the newest event's ``t_ms`` (the member's wall clock when its ``EventHub``
published it; same host, same clock). Prints p50/p99 of that lag and the achieved write rate.
Target: p99 ≤ 250 ms.

    .venv/bin/python bench/dashboard.py [--nodes 7] [--rate 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

CHROMIUM = os.environ.get("RAFTKV_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]  # fmt: skip


async def load(endpoints: list[str], rate: float, seconds: float) -> dict[str, float]:
    """Open-loop puts at ``rate``/s (at most 256 in flight) for ``seconds``."""
    from raftkv.client import AsyncClient

    done = failed = 0
    sem = asyncio.Semaphore(256)
    async with AsyncClient(endpoints) as c:

        async def one(i: int) -> None:
            nonlocal done, failed
            try:
                await c.put(f"bench/{i % 1000}".encode(), b"v" * 64)
                done += 1
            except Exception:
                failed += 1
            finally:
                sem.release()

        t0 = time.monotonic()
        i = 0
        tasks = set()
        while (now := time.monotonic()) < t0 + seconds:
            due = int((now - t0) * rate)
            while i < due:
                await sem.acquire()
                t = asyncio.create_task(one(i))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        return {"done": done, "failed": failed, "seconds": time.monotonic() - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=7)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=30.0)  # a p99 needs a few hundred frames
    a = ap.parse_args()
    if len(sys.argv) > 1 and sys.argv[1] == "--load":  # pragma: no cover
        return 0
    from playwright.sync_api import sync_playwright

    from raftkv.localcluster import LocalCluster, free_ports

    tmp = tempfile.mkdtemp(prefix="raftkv-bench-dashboard-")
    ports = free_ports(2 * a.nodes + 1)
    pairs = [(ports[2 * i], ports[2 * i + 1]) for i in range(a.nodes)]
    cluster = LocalCluster(tmp, n=a.nodes, ports=pairs, election_timeout_ms=1000)
    dash = loader = None
    try:
        cluster.start()
        cluster.wait_ready(30.0)
        urls = [m.client_url for m in cluster.members]
        code = "import sys; from raftkv.cli.dashboard import main; sys.exit(main(sys.argv[1:]))"
        dash = subprocess.Popen(
            [sys.executable, "-c", code, "--endpoints", ",".join(urls), "--port", str(ports[-1])],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert dash.stdout is not None
        url = dash.stdout.readline().split()[-1]
        load_code = (
            "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]); import dashboard as d; "
            "print(json.dumps(asyncio.run(d.load(sys.argv[2].split(','), float(sys.argv[3]), "
            "float(sys.argv[4])))))"
        )
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                os.path.join(tmp, "profile"), executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": 1400, "height": 1000},
            )  # fmt: skip
            page = ctx.new_page()
            page.goto(url + "?ack=1")
            page.wait_for_function(
                f"() => document.querySelectorAll('.card[data-up=true]').length === {a.nodes}",
                timeout=20_000,
            )
            loader = subprocess.Popen(
                [sys.executable, "-c", load_code, os.path.dirname(os.path.abspath(__file__)),
                 ",".join(m.endpoint for m in cluster.members), str(a.rate), str(a.seconds)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            start_ms = time.time() * 1000 + 1000  # skip the first second (connections warming)
            out, _ = loader.communicate(timeout=a.seconds + 60)
            acks = page.evaluate("() => window.raftkvDashboard.acks")
            ctx.close()
        stats = json.loads(out.strip().splitlines()[-1])
        lags, to_frame, prev = [], [], 0
        for ack in acks:
            if ack["ev_ms"] > prev and ack["at_ms"] >= start_ms:
                lags.append(ack["at_ms"] - ack["ev_ms"])
                to_frame.append(ack["frame_ms"] - ack["ev_ms"])
            prev = max(prev, ack["ev_ms"])
        if len(lags) < 10:
            print(f"too few samples ({len(lags)})", file=sys.stderr)
            return 1
        lags.sort()
        p50 = statistics.median(lags)
        p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
        rate = stats["done"] / stats["seconds"]
        to_frame.sort()
        q99 = to_frame[min(len(to_frame) - 1, int(len(to_frame) * 0.99))]
        print(
            f"dashboard lag, {a.nodes} members at {rate:.0f} writes/s "
            f"({stats['failed']} failed): event → render p50 {p50:.0f} ms, p99 {p99:.0f} ms "
            f"over {len(lags)} frames (target p99 ≤ 250 ms: {'ok' if p99 <= 250 else 'MISSED'}); "
            f"of which event → frame built p50 {statistics.median(to_frame):.0f} ms, p99 {q99:.0f} ms"
        )
        return 0
    finally:
        for p in (loader, dash):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
