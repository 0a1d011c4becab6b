"""The ``raftkv`` command: a thin dispatcher.

Each subcommand's module is imported only when that subcommand runs, so ``raftkv --help`` starts
fast and one subcommand never pays for another's imports. Everything after the subcommand's name
is passed through unparsed: the subcommand owns its flags and its ``--help``.

Exit codes: 0 ok · 1 runtime error · 2 usage error · 3 liveness failure (simulator only).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

import raftkv

EXIT_USAGE = 2

# subcommand -> (the module whose ``main(argv: list[str]) -> int`` runs it, one line of help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "cluster": ("raftkv.cli.cluster", "run a local 3-node cluster (raftkv cluster --help)"),
    "dashboard": (
        "raftkv.cli.dashboard",
        "web dashboard: live cluster or trace replay (raftkv dashboard --help)",
    ),
    "serve": ("raftkv.cli.serve", "run one member, with etcd's flags (raftkv serve --help)"),
    "sim": ("raftkv.cli.sim", "run the deterministic simulator (raftkv sim --help)"),
    "wal": ("raftkv.storage.tools", "check a write-ahead log: raftkv wal {inspect,verify} DIR"),
}

# Client commands with etcdctl's shapes; ``raftkv.cli.ctl.main`` gets the command name too.
_CTL_COMMANDS: dict[str, str] = {
    "put": "write a key",
    "get": "read a key or a range",
    "del": "delete a key or a range",
    "watch": "watch a key or a range",
    "txn": "run a transaction read from stdin",
    "lease": "grant, revoke, keep-alive, timetolive, list",
    "member": "member list",
    "status": "the members' status (-w json|table)",
}


class UsageError(Exception):
    """A wrong command line: the subcommand prints it in one line and exits 2."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises ``UsageError`` instead of printing usage and exiting, so
    every raftkv command reports a wrong flag the same way: one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="raftkv",
        description="A Raft consensus library and its tools. "
        "Run 'raftkv COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"raftkv {raftkv.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_) in _COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    for name, help_ in _CTL_COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``raftkv`` command with ``argv`` (default: ``sys.argv[1:]``); return the exit code.

    The console script exits with the returned code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _COMMANDS:
        module = importlib.import_module(_COMMANDS[args[0]][0])
        code: int = module.main(args[1:])
        return code
    if args and args[0] in _CTL_COMMANDS:
        ctl = importlib.import_module("raftkv.cli.ctl")
        ctl_code: int = ctl.main(args)
        return ctl_code
    try:
        # Only --help, --version and mistakes get here; the first two exit the parse.
        ns = _parser().parse_args(args)
        message = f"put the command first: raftkv {ns.command} ..."  # e.g. 'raftkv -- sim'
    except UsageError as e:
        message = str(e)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0
    print(f"raftkv: error: {message} (see raftkv --help)", file=sys.stderr)
    return EXIT_USAGE
