"""Web dashboard: a live view of a running cluster (with controls for a ``LocalCluster``) and a
replay of simulator traces. See docs/dashboard.md."""

from raftkv.dashboard.app import DashboardThread, make_app, start_site
from raftkv.dashboard.live import LiveMonitor
from raftkv.dashboard.replay import Replay, TraceError

__all__ = ["DashboardThread", "LiveMonitor", "Replay", "TraceError", "make_app", "start_site"]
