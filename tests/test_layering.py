"""Imports only point downward: the "may import" column of ARCHITECTURE.md's package table.

Every module under ``src/raftkv`` is read with ``ast`` (never imported). Each ``import``,
``from ... import`` (relative ones resolved) and ``importlib.import_module("...")`` with a literal
name counts, wherever it appears: inside functions and ``if TYPE_CHECKING:`` too. The pure core
``raftkv.raft`` is held to more: stdlib and ``msgspec`` only, no I/O, clock or threads, and no
module-level ``random`` functions (it takes a seeded ``random.Random``).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"

ROOT = "raftkv"  # raftkv/__init__.py and raftkv/__main__.py

# package -> the raftkv packages it may import besides itself (ARCHITECTURE.md, "Packages").
MAY_IMPORT: dict[str, frozenset[str]] = {
    "raft": frozenset(),
    "storage": frozenset({"raft"}),
    "transport": frozenset({"raft"}),
    "kv": frozenset({"raft"}),
    "node": frozenset({"raft", "storage", "transport", "kv"}),
    "server": frozenset({"node", "kv", "transport"}),
    "client": frozenset({"kv", "transport"}),
    "sim": frozenset({"raft", "kv"}),
    "localcluster": frozenset({"client"}),
    "check": frozenset({"client", "localcluster", "sim"}),
    "dashboard": frozenset({"client", "localcluster", "sim"}),
}
MAY_IMPORT["cli"] = frozenset(MAY_IMPORT)
MAY_IMPORT[ROOT] = frozenset({"cli"})
# Any module may import the root (``raftkv.__version__``): Python imports it first anyway.

RAFT_THIRD_PARTY = frozenset({"msgspec"})
RAFT_FORBIDDEN = frozenset(
    {
        "asyncio", "socket", "time", "os", "threading", "selectors", "subprocess",
        "_thread", "multiprocessing", "concurrent", "signal", "ssl", "datetime",
        "shutil", "tempfile", "pathlib",
    }
)  # fmt: skip


def package_of(module: str) -> str:
    """``raftkv.sim.net`` -> ``sim``; ``raftkv``, ``raftkv.__main__`` -> ``raftkv``."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return ROOT
    return parts[1]


def imported_modules(module: str, is_package: bool, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of everything ``module`` imports.

    ``from raftkv import sim`` yields ``raftkv.sim``; ``from raftkv.sim import x`` yields
    ``raftkv.sim`` (whether ``x`` is a module does not change the package).
    """
    here = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == ROOT:
                found += [(node.lineno, f"{ROOT}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def _global_random_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """Uses of the ``random`` module other than ``random.Random``."""
    aliases = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "random"
    }
    uses: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "random" and not node.level:
            uses += [(node.lineno, f"random.{a.name}") for a in node.names if a.name != "Random"]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr != "Random"
        ):
            uses.append((node.lineno, f"random.{node.attr}"))
    return uses


def check_source(module: str, source: str, is_package: bool = False) -> list[str]:
    """The layering violations of one module, as ``module:line: message`` strings."""
    tree = ast.parse(source)
    package = package_of(module)
    if package not in MAY_IMPORT:
        return [f"{module}: package raftkv.{package} is not in ARCHITECTURE.md's table"]
    allowed = MAY_IMPORT[package] | {package, ROOT}
    problems: list[str] = []
    for line, name in imported_modules(module, is_package, tree):
        top = name.split(".")[0]
        if top == ROOT:
            target = package_of(name)
            if target not in MAY_IMPORT and name.count(".") == 1:
                target = ROOT  # an attribute of the root, such as raftkv.__version__
            if target not in allowed:
                problems.append(f"{module}:{line}: raftkv.{package} may not import {name}")
        elif package == "raft":
            if top in RAFT_FORBIDDEN:
                problems.append(f"{module}:{line}: the pure core may not import {name}")
            elif top not in sys.stdlib_module_names and top not in RAFT_THIRD_PARTY:
                problems.append(
                    f"{module}:{line}: the core imports stdlib and msgspec only: {name}"
                )
    if package == "raft":
        for line, use in _global_random_uses(tree):
            problems.append(f"{module}:{line}: global randomness ({use}); use the config's rng")
    return problems


def _modules() -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for path in sorted((SRC / ROOT).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found.append((".".join(parts), path))
    return found


def test_the_tree_obeys_the_table() -> None:
    modules = _modules()
    assert any(name == "raftkv.raft.rawnode" for name, _ in modules), "found no sources"
    problems = [
        problem
        for name, path in modules
        for problem in check_source(name, path.read_text(), path.name == "__init__.py")
    ]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("raftkv.raft.log", "import asyncio", False),
        ("raftkv.raft.log", "from time import monotonic", False),
        ("raftkv.raft.log", "import os.path", False),
        ("raftkv.raft.log", "import numpy", False),
        ("raftkv.raft.log", "from raftkv.storage import wal", False),
        ("raftkv.raft.log", "from .. import kv", False),
        ("raftkv.raft.log", "import random\nx = random.randint(1, 3)", False),
        ("raftkv.raft.log", "import random as r\nf = r.choice", False),
        ("raftkv.raft.log", "from random import random", False),
        ("raftkv.kv", "from raftkv import node", True),
        ("raftkv.sim.net", "from ..node import host", False),
        ("raftkv.sim", "from .. import dashboard", True),
        ("raftkv.storage.wal", "def f():\n    import raftkv.sim.cluster", False),
        ("raftkv.client", "import importlib\nimportlib.import_module('raftkv.node')", True),
        ("raftkv", "import raftkv.raft", True),
        ("raftkv.__main__", "from raftkv.sim import cli", False),
        ("raftkv.bench", "import json", True),
    ],
)
def test_the_checker_catches(module: str, source: str, is_package: bool) -> None:
    assert check_source(module, source, is_package) != []


@pytest.mark.parametrize(
    ("module", "source", "is_package"),
    [
        ("raftkv.raft.log", "import random\nrng: random.Random = random.Random(7)", False),
        ("raftkv.raft.log", "from random import Random\nimport msgspec\nimport enum", False),
        ("raftkv.raft.log", "from . import quorum\nfrom .types import Entry", False),
        ("raftkv.raft", "from .rawnode import RawNode", True),
        (
            "raftkv.sim.net",
            "from ..kv import store\nfrom raftkv.raft import host\nimport time",
            False,
        ),
        ("raftkv.node.loop", "import asyncio\nfrom raftkv import storage, transport", False),
        ("raftkv.check.lin", "from raftkv import __version__", False),
        (
            "raftkv.cli",
            "import raftkv\nimport importlib\nimportlib.import_module('raftkv.sim.cli')",
            False,
        ),
        ("raftkv.__main__", "from raftkv.cli import main", False),
    ],
)
def test_the_checker_allows(module: str, source: str, is_package: bool) -> None:
    assert check_source(module, source, is_package) == []
