"""``raftkv sim``: run seeded simulations from the command line.

``main(argv)`` gets everything after ``raftkv sim``. Exit codes: 0 every run ok · 1 a safety
violation (or an unexpected error, e.g. from the core) · 2 usage error · 3 a liveness failure.
See docs/sim.md.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import sys
from collections.abc import Iterator
from dataclasses import replace
from typing import NoReturn, TextIO

from raftkv.sim.config import SimConfig
from raftkv.sim.faults import FAULT_KINDS, FaultRates, parse_kinds
from raftkv.sim.runner import RunResult, RunSpec, run_seed

PROG = "raftkv sim"


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _positive(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {s}")
    return v


def _seed_range(s: str) -> range:
    lo, sep, hi = s.partition("-")
    try:
        a = int(lo)
        b = int(hi) if sep else a
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B, e.g. 1-500: {s!r}") from None
    if b < a:
        raise argparse.ArgumentTypeError(f"empty seed range: {s}")
    return range(a, b + 1)


def _faults(s: str) -> tuple[str, ...]:
    try:
        return parse_kinds(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Run a simulated Raft cluster in virtual time, attack it with faults and "
        "check Raft's safety invariants after every step.",
    )
    p.add_argument("--nodes", type=_positive, default=5, help="cluster size (default 5)")
    p.add_argument("--seed", type=int, default=1, help="the seed of a single run (default 1)")
    p.add_argument("--seeds", type=_seed_range, help="sweep a range of seeds, e.g. 1-500")
    p.add_argument(
        "--ticks", type=_positive, default=10_000, help="10 ms ticks per run (default 10000)"
    )
    p.add_argument(
        "--faults",
        type=_faults,
        default=(),
        help=f"comma list of {','.join(FAULT_KINDS)}, or all, or none (default none)",
    )
    p.add_argument(
        "--nasty",
        action="store_true",
        help="harsher rates for sweeps: see docs/sim.md (the CI sweep uses it)",
    )
    p.add_argument(
        "--propose-every", type=_positive, default=5, help="ticks between proposals (default 5)"
    )
    p.add_argument("--jobs", type=_positive, default=1, help="seeds run in parallel (default 1)")
    p.add_argument("--trace", metavar="FILE", help="write the trace (schema v1) of one seed")
    p.add_argument(
        "--trace-every",
        type=int,
        default=10,
        metavar="N",
        help="a full state record per node every N ticks (default 10, 0: never)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="per-kind fault counts per seed")
    p.add_argument(
        "--open",
        action="store_true",
        help="afterwards, replay the --trace in the dashboard (via the raftkv command)",
    )
    return p


NASTY_RATES = FaultRates(
    loss=0.15,
    crash_every_ms=(300, 1000),
    down_ms=(10, 600),
    leader_crash=0.3,
    commit_crash=0.03,
)
"""The ``--nasty`` fault rates (with ``NASTY_SIM``)."""

NASTY_MAX_SIZE_PER_MSG = 40
NASTY_MAX_INFLIGHT = 1
"""``--nasty`` also makes every AppendEntries carry about one entry, one in flight at a time,
so catching up takes many round trips in which commit rules matter."""


def spec_from_args(ns: argparse.Namespace) -> RunSpec:
    """The ``RunSpec`` the parsed flags describe."""
    sim = SimConfig(trace_state_every=ns.trace_every)
    rates = FaultRates()
    if ns.nasty:
        sim = replace(
            sim, max_size_per_msg=NASTY_MAX_SIZE_PER_MSG, max_inflight_msgs=NASTY_MAX_INFLIGHT
        )
        rates = NASTY_RATES
    return RunSpec(
        nodes=ns.nodes,
        ticks=ns.ticks,
        faults=ns.faults,
        rates=rates,
        propose_every=ns.propose_every,
        sim=sim,
    )


def run_many(seeds: range, spec: RunSpec, jobs: int) -> Iterator[RunResult]:
    """Results of ``seeds`` in seed order, computed by ``jobs`` processes.

    Workers are spawned, so a script calling this with ``jobs > 1`` needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    fn = functools.partial(run_seed, spec=spec)
    if jobs <= 1 or len(seeds) <= 1:
        yield from map(fn, seeds)
        return
    # "spawn": a fresh interpreter per worker, safe even when the caller has threads (a
    # forked child could inherit a lock held by another thread). Runs stay deterministic:
    # nothing a run does depends on the process it runs in.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(jobs, len(seeds))) as pool:
        yield from pool.imap(fn, seeds)


def _report_failure(r: RunResult, out: TextIO, replay: str) -> None:
    print(f"  replay: {PROG} --seed {r.seed}{replay}", file=out)
    print(f"  last {len(r.recent)} events:", file=out)
    for line in r.recent:
        print(f"    {line}", file=out)


def main(argv: list[str]) -> int:
    """Run ``raftkv sim`` with ``argv`` (the arguments after ``sim``); returns the exit code."""
    out = sys.stdout
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
        if ns.seeds is not None and ns.trace and len(ns.seeds) > 1:
            raise _UsageError("--trace writes one seed's trace; use --seed, not --seeds")
        if ns.trace_every < 0:
            raise _UsageError("--trace-every must be >= 0")
    except _UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    if ns.open:  # `raftkv sim` handles --open itself (raftkv.cli.sim); here it cannot
        print(
            f"{PROG}: --open works through the raftkv command: raftkv sim ... --open",
            file=sys.stderr,
        )
    spec = spec_from_args(ns)
    seeds = ns.seeds if ns.seeds is not None else range(ns.seed, ns.seed + 1)
    replay = f" --nodes {ns.nodes} --ticks {ns.ticks} --faults {','.join(ns.faults) or 'none'}"
    if ns.nasty:
        replay += " --nasty"
    print(
        f"{PROG}: nodes={ns.nodes} ticks={ns.ticks} tick=10ms faults: "
        f"{spec.rates.describe(ns.faults)}{' (nasty)' if ns.nasty else ''}",
        file=out,
    )
    if ns.trace:
        try:
            with open(ns.trace, "w", encoding="utf-8", newline="\n") as f:
                results = [run_seed(seeds[0], spec, trace=f)]
        except OSError as e:
            print(f"{PROG}: error: cannot write trace: {e}", file=sys.stderr)
            return 2
    else:
        results = run_many(seeds, spec, ns.jobs)  # type: ignore[assignment]
    outcomes: dict[str, int] = {"ok": 0, "safety": 0, "liveness": 0, "error": 0}
    total = RunResult(seed=0)
    total.faults = dict.fromkeys(ns.faults, 0)
    for r in results:
        line = r.summary()
        if ns.verbose:
            line += " " + " ".join(f"{k}={v}" for k, v in r.faults.items())
        print(line, file=out, flush=True)
        if not r.ok:
            _report_failure(r, out, replay)
        outcomes[r.outcome] += 1
        total.leaders += r.leaders
        total.committed += r.committed
        total.msgs += r.msgs
        total.checks += r.checks
        for k, v in r.faults.items():
            total.faults[k] = total.faults.get(k, 0) + v
    if len(seeds) > 1:
        kinds = " ".join(f"{k}={v}" for k, v in total.faults.items())
        print(
            f"total seeds={len(seeds)} ok={outcomes['ok']} safety={outcomes['safety']} "
            f"liveness={outcomes['liveness']} error={outcomes['error']} "
            f"leaders={total.leaders} committed={total.committed} msgs={total.msgs} "
            f"faults={sum(total.faults.values())} checks={total.checks}"
            + (f" {kinds}" if kinds else ""),
            file=out,
        )
    if outcomes["safety"] or outcomes["error"]:
        return 1
    if outcomes["liveness"]:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
