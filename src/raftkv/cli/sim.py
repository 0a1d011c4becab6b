"""``raftkv sim``: the simulator (``raftkv.sim.cli``), plus ``--open``, which replays the run's
trace in the dashboard afterwards (``raftkv sim --seed 7 --trace t.jsonl --open``).

The simulator may not import the dashboard (it sits below it), so the two meet here.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence


def _trace_path(argv: list[str]) -> str | None:
    for i, a in enumerate(argv):
        if a == "--trace" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--trace="):
            return a.split("=", 1)[1]
    return None


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    want_open = "--open" in args
    if want_open:
        args = [a for a in args if a != "--open"]
        if _trace_path(args) is None:
            print("raftkv sim: error: --open needs --trace FILE", file=sys.stderr)
            return 2
    sim = importlib.import_module("raftkv.sim.cli")
    code: int = sim.main(args)
    if not want_open or code == 2:
        return code
    trace = _trace_path(args)
    assert trace is not None
    print(f"raftkv sim: replaying {trace} in the dashboard (Ctrl-C to stop)", file=sys.stderr)
    dashboard = importlib.import_module("raftkv.cli.dashboard")
    dash_code: int = dashboard.main(["--replay", trace])
    return code or dash_code
