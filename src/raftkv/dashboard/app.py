"""The dashboard's aiohttp application.

Routes:

- ``GET /`` and ``/static/...``: the page (plain HTML/JS/CSS shipped in this package).
- ``GET /api/info``: the mode (``live`` or ``replay``), whether controls are on, replay metadata.
- ``GET /api/ws``: live mode, a WebSocket of frames (``raftkv.dashboard.model``) every 100 ms;
  the page may send ``{"rendered": seq, "ev_ms": ..., "at_ms": ...}`` back (used by the bench).
- ``GET /api/frame``: the latest live frame as JSON.
- ``GET /api/replay/frames?from=T&to=U``: replay mode, frames of ticks ``T..U-1``.
- ``POST /api/control/{kill,restart,put,partition,heal,transfer}``: only with a ``LocalCluster``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from raftkv.dashboard.live import LiveMonitor
from raftkv.dashboard.replay import Replay
from raftkv.localcluster import LocalCluster

STATIC = resources.files("raftkv.dashboard") / "static"

MONITOR = web.AppKey("monitor", LiveMonitor)
REPLAY = web.AppKey("replay", Replay)
CLUSTER = web.AppKey("cluster", LocalCluster)
RENDERED = web.AppKey("rendered", list)


def _err(msg: str, status: int = 400) -> web.Response:
    return web.json_response({"error": msg}, status=status)


async def _index(request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=(STATIC / "index.html").read_text(encoding="utf-8"), content_type="text/html"
    )


async def _static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    types = {"js": "application/javascript", "css": "text/css", "html": "text/html"}
    ext = name.rsplit(".", 1)[-1]
    if "/" in name or ".." in name or ext not in types:
        return _err("not found", 404)
    f = STATIC / name
    if not f.is_file():
        return _err("not found", 404)
    return web.Response(
        text=f.read_text(encoding="utf-8"),
        content_type=types[ext],
        headers={"Cache-Control": "no-cache"},
    )


async def _favicon(request: web.Request) -> web.StreamResponse:
    return web.Response(status=204)


async def _info(request: web.Request) -> web.StreamResponse:
    app = request.app
    if REPLAY in app:
        return web.json_response(app[REPLAY].info())
    mon = app[MONITOR]
    return web.json_response(
        {
            "mode": "live",
            "controls": CLUSTER in app,
            "members": [{"index": m.index, "url": m.url, "name": m.name} for m in mon.members],
            "frame_ms": mon.frame_ms,
            "poll_ms": mon.poll_ms,
        }
    )


async def _frame(request: web.Request) -> web.StreamResponse:
    mon = request.app.get(MONITOR)
    if mon is None:
        return _err("not in live mode", 404)
    return web.json_response(mon.last_frame or mon.frame())


async def _replay_frames(request: web.Request) -> web.StreamResponse:
    rp = request.app.get(REPLAY)
    if rp is None:
        return _err("not in replay mode", 404)
    try:
        lo = int(request.query.get("from", "0"))
        hi = int(request.query.get("to", str(lo + 200)))
    except ValueError:
        return _err("from and to must be integers")
    hi = min(hi, lo + 2000)
    return web.json_response(rp.frame_range(lo, hi))


async def _ws(request: web.Request) -> web.StreamResponse:
    mon = request.app.get(MONITOR)
    if mon is None:
        return _err("not in live mode", 404)
    ws = web.WebSocketResponse(heartbeat=10.0)
    await ws.prepare(request)
    q = mon.subscribe()
    rendered = request.app[RENDERED]

    async def reader() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                with contextlib.suppress(ValueError, TypeError, KeyError):
                    d = json.loads(msg.data)
                    if "rendered" in d:
                        rendered.append(d)
                        del rendered[:-10000]

    rt = asyncio.create_task(reader())
    try:
        if mon.last_frame is not None:
            await ws.send_str(json.dumps(mon.last_frame, separators=(",", ":")))
        while not ws.closed and not rt.done():
            get = asyncio.ensure_future(q.get())
            done, _ = await asyncio.wait({get, rt}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                break
            await ws.send_str(json.dumps(get.result(), separators=(",", ":")))
    except (ConnectionError, RuntimeError):
        pass
    finally:
        mon.unsubscribe(q)
        rt.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await rt
        await ws.close()
    return ws


# -- controls -----------------------------------------------------------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        d = await request.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return d if isinstance(d, dict) else {}


def _member_index(app: web.Application, d: dict[str, Any]) -> int:
    i = d.get("index")
    n = len(app[CLUSTER].members)
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"index must be 0..{n - 1}"}), content_type="application/json"
        )
    return i


async def _control(request: web.Request) -> web.StreamResponse:
    app = request.app
    if CLUSTER not in app:
        return _err("read-only: this dashboard did not start the cluster", 403)
    cluster, mon = app[CLUSTER], app[MONITOR]
    action = request.match_info["action"]
    d = await _body(request)
    try:
        if action == "kill":
            i = _member_index(app, d)
            await asyncio.to_thread(_kill, cluster, i)
            return web.json_response({"killed": i})
        if action == "restart":
            i = _member_index(app, d)
            await asyncio.to_thread(cluster.restart, i)
            return web.json_response({"restarted": i})
        if action == "partition":
            return await _partition(cluster, mon, d)
        if action == "heal":
            await asyncio.to_thread(cluster.heal)
            mon.partition = None
            return web.json_response({"healed": True})
        if action == "put":
            return await _put(mon, d)
        if action == "transfer":
            i = _member_index(app, d)
            await asyncio.to_thread(cluster.transfer_leader, i)
            return web.json_response({"leader": i})
    except web.HTTPException:
        raise
    except Exception as e:  # a cluster error: one line to the page, keep serving
        return _err(f"{action} failed: {' '.join(str(e).split())}", 500)
    return _err(f"unknown action {action}", 404)


def _kill(cluster: LocalCluster, i: int) -> None:
    try:
        cluster.kill(i)
    except AttributeError:
        # ``raftkv cluster``'s main loop reaped the member between our SIGKILL and our wait
        if cluster.members[i].running():
            raise


async def _partition(cluster: LocalCluster, mon: LiveMonitor, d: dict[str, Any]) -> web.Response:
    groups = d.get("groups")
    n = len(cluster.members)
    if (
        not isinstance(groups, list)
        or not all(isinstance(g, list) for g in groups)
        or not all(isinstance(i, int) and 0 <= i < n for g in groups for i in g)
    ):
        return _err('expected {"groups": [[member indexes], ...]}')
    group_of = {i: gi for gi, g in enumerate(groups) for i in g}

    def apply() -> None:
        for i in range(n):
            if not cluster.members[i].running():
                continue
            drop = [j for j in range(n) if j != i and group_of.get(j, -1 - j) != group_of.get(i)]
            cluster.partition(i, drop)

    await asyncio.to_thread(apply)
    ids = await asyncio.to_thread(cluster.member_ids)
    mon.partition = [[ids[i] for i in g] for g in groups]
    return web.json_response({"partition": mon.partition})


async def _put(mon: LiveMonitor, d: dict[str, Any]) -> web.Response:
    key, value = str(d.get("key", "")), str(d.get("value", ""))
    if not key:
        return _err("key is empty")
    lead = mon.leader()
    order = ([lead] if lead else []) + [m for m in mon.members if m is not lead and m.reachable]
    body = {
        "key": base64.b64encode(key.encode()).decode(),
        "value": base64.b64encode(value.encode()).decode(),
    }
    last_error = "no member answered"
    timeout = aiohttp.ClientTimeout(total=5.0)
    for m in order:
        try:
            async with mon.session.post(m.url + "/v3/kv/put", json=body, timeout=timeout) as r:
                res = await r.json(content_type=None)
            if r.status != 200:
                last_error = (
                    f"{m.name}: {res.get('error', r.status) if isinstance(res, dict) else r.status}"
                )
                continue
            async with mon.session.get(m.url + "/raftkv/v1/status", timeout=timeout) as r2:
                st = await r2.json(content_type=None)
            return web.json_response(
                {
                    "member": m.name,
                    "index": int(st.get("commit", 0)),
                    "revision": int(res.get("header", {}).get("revision", 0)),
                }
            )
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as e:
            last_error = f"{m.name}: {type(e).__name__}"
    return _err(f"put failed: {last_error}", 503)


# -- the application ----------------------------------------------------------------------------


def make_app(
    *,
    urls: list[str] | None = None,
    names: list[str] | None = None,
    cluster: LocalCluster | None = None,
    replay: Replay | None = None,
    poll_ms: int = 200,
    frame_ms: int = 100,
) -> web.Application:
    """A dashboard for a cluster (``cluster``: live with controls; ``urls``: live, read-only)
    or for a trace (``replay``)."""
    app = web.Application()
    app[RENDERED] = []
    if replay is not None:
        app[REPLAY] = replay
    else:
        if cluster is not None:
            app[CLUSTER] = cluster
            urls = [m.client_url for m in cluster.members]
            names = [m.name for m in cluster.members]
        if not urls:
            raise ValueError("a live dashboard needs endpoints or a cluster")
        mon = LiveMonitor(urls, names, poll_ms=poll_ms, frame_ms=frame_ms)
        app[MONITOR] = mon

        async def on_startup(app: web.Application) -> None:
            await mon.start()

        async def on_cleanup(app: web.Application) -> None:
            await mon.close()

        app.on_startup.append(on_startup)
        app.on_cleanup.append(on_cleanup)
    app.router.add_get("/", _index)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/favicon.ico", _favicon)
    app.router.add_get("/api/info", _info)
    app.router.add_get("/api/frame", _frame)
    app.router.add_get("/api/ws", _ws)
    app.router.add_get("/api/replay/frames", _replay_frames)
    app.router.add_post("/api/control/{action}", _control)
    return app


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, str]:
    """Serve ``app``; returns the runner and the page's URL (port 0 picks a free one)."""
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    real = port
    for sock in getattr(site._server, "sockets", None) or ():
        real = sock.getsockname()[1]
        break
    return runner, f"http://{host}:{real}/"


class DashboardThread:
    """A dashboard served from a background thread (for ``raftkv cluster``, tests, bench).

    ``start()`` returns once the port is bound (raises what binding raised); ``url`` is the
    page; ``stop()`` shuts it down.
    """

    def __init__(self, app_factory: Callable[[], web.Application], host: str = "127.0.0.1",
                 port: int = 8080) -> None:  # fmt: skip
        self._factory = app_factory
        self.host, self.port = host, port
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="raftkv-dashboard", daemon=True)

    def start(self) -> DashboardThread:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            runner, self.url = await start_site(self._factory(), self.host, self.port)
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5.0)
