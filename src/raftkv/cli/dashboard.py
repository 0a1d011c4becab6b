"""``raftkv dashboard``: serve the web dashboard.

- ``raftkv dashboard --endpoints http://127.0.0.1:2379,...``: a read-only live view of a running
  cluster (each member's ``/raftkv/v1/status`` and ``/raftkv/v1/events``).
- ``raftkv dashboard --replay trace.jsonl``: replay a ``raftkv sim --trace`` file.

Controls (kill, restart, partition, put) exist only in the dashboard that ``raftkv cluster``
starts, which owns the member processes. Runs until Ctrl-C; exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence

from raftkv.cli import Parser, UsageError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="raftkv dashboard", description="Serve the raftkv web dashboard.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--endpoints", help="client URLs of a running cluster, comma-separated (read-only view)"
    )
    src.add_argument("--replay", metavar="FILE", help="a trace written by raftkv sim --trace")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to serve on (default 8080)")
    return p


async def _serve(args: argparse.Namespace) -> int:
    from raftkv.dashboard import Replay, TraceError, make_app, start_site

    if args.replay:
        try:
            replay = await asyncio.to_thread(Replay.from_file, args.replay)
        except (OSError, TraceError, ValueError, KeyError) as e:
            print(f"raftkv dashboard: error: {args.replay}: {e}", file=sys.stderr)
            return EXIT_USAGE
        app = make_app(replay=replay)
    else:
        urls = [u.strip() for u in args.endpoints.split(",") if u.strip()]
        if not urls:
            print("raftkv dashboard: error: --endpoints is empty", file=sys.stderr)
            return EXIT_USAGE
        app = make_app(urls=urls)
    try:
        runner, url = await start_site(app, args.host, args.port)
    except OSError as e:
        print(f"raftkv dashboard: error: cannot serve on {args.host}:{args.port}: {e.strerror}",
              file=sys.stderr)  # fmt: skip
        return EXIT_RUNTIME
    print(f"raftkv dashboard: {url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(s, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
    except UsageError as e:
        print(f"raftkv dashboard: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_OK
    if not 0 <= args.port <= 65535:
        print("raftkv dashboard: error: --port must be 0..65535", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(args))
