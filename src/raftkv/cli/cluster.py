"""``raftkv cluster``: run a local 3-member cluster in the foreground until Ctrl-C.

Members are ``raftkv serve`` child processes (``raftkv.localcluster.LocalCluster``) on the
ports of etcd's local Procfile (2379/2380, 22379/22380, 32379/32380 for base 2379). A data dir
left by an earlier run is resumed (each member starts with ``--initial-cluster-state
existing``). Ctrl-C or SIGTERM stops every member; exit 0 with no child left.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from raftkv.cli import Parser, UsageError
from raftkv.localcluster import ClusterError, LocalCluster, default_ports

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = Parser(prog="raftkv cluster", description="Run a local 3-member raftkv cluster.")
    p.add_argument(
        "--base-port", type=int, default=2379, help="client port of the first member (default 2379)"
    )
    p.add_argument("--data-dir", default="./raftkv-data", help="data dirs and logs go here")
    p.add_argument("--election-timeout", type=int, default=None, metavar="MS")
    p.add_argument("-n", "--members", type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument(
        "--dashboard-port", type=int, default=8080, metavar="PORT",
        help="serve the web dashboard on 127.0.0.1:PORT (default 8080; 0: any free port)",
    )  # fmt: skip
    p.add_argument("--no-dashboard", action="store_true", help="do not serve the dashboard")
    return p


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
        default_ports(args.members, args.base_port)
    except UsageError as e:
        print(f"raftkv cluster: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:
        print(f"raftkv cluster: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else EXIT_OK
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    cluster = LocalCluster(
        args.data_dir, n=args.members, base_port=args.base_port,
        election_timeout_ms=args.election_timeout,
    )  # fmt: skip
    dashboard = None
    try:
        resumed = os.path.isdir(cluster.members[0].data_dir)
        cluster.start()
        try:
            lead = cluster.wait_ready(timeout=30.0)
        except ClusterError as e:
            print(f"raftkv cluster: error: {e}", file=sys.stderr)
            return EXIT_RUNTIME
        eps = ",".join(cluster.endpoints())
        print(
            f"raftkv cluster: {len(cluster.members)} members {'resumed' if resumed else 'started'}"
            f" in {os.path.abspath(args.data_dir)}; leader {cluster.members[lead].name}"
        )
        for m in cluster.members:
            print(f"  {m.name}  client {m.client_url}  peer {m.peer_url}  log {m.log_path}")
        if not args.no_dashboard:
            from raftkv.dashboard import DashboardThread, make_app

            try:
                dashboard = DashboardThread(
                    lambda: make_app(cluster=cluster), "127.0.0.1", args.dashboard_port
                ).start()
                print(f"dashboard: {dashboard.url}")
            except OSError as e:  # the cluster runs on without it
                dashboard = None
                print(
                    f"raftkv cluster: dashboard not started on port {args.dashboard_port}: "
                    f"{e.strerror or e} (see --dashboard-port)",
                    file=sys.stderr,
                )
        print("try:")
        print(f"  ETCDCTL_API=3 etcdctl --endpoints={eps} put foo bar")
        print(f"  raftkv put foo bar --endpoints={eps}")
        print(f"  curl {cluster.members[0].client_url}/raftkv/v1/status")
        print("Ctrl-C stops the cluster.", flush=True)
        while not stop.is_set():
            stop.wait(0.5)
            for m in cluster.members:
                if m.proc is not None and m.proc.poll() is not None:
                    print(
                        f"raftkv cluster: {m.name} exited with {m.proc.returncode} "
                        f"(see {m.log_path})",
                        file=sys.stderr,
                        flush=True,
                    )
                    cluster.members[m.index].exits.append(m.proc.returncode)
                    m.proc = None
        return EXIT_OK
    finally:
        if dashboard is not None:
            dashboard.stop()
        cluster.close()
        for s, h in old.items():
            signal.signal(s, h)
        print("raftkv cluster: stopped", file=sys.stderr, flush=True)
