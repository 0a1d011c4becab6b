"""The ``raftkv`` dispatcher: usage errors, --version, and pass-through to subcommand modules.

The subcommands' own behaviour is tested with their modules; here they are stand-ins that record
what they were handed.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import types

import pytest

import raftkv
from raftkv.cli import main


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, code: int) -> list[list[str]]:
    calls: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        calls.append(argv)
        return code

    module = types.ModuleType(name)
    module.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    return calls


def test_sim_gets_the_rest_of_argv_unparsed(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_module(monkeypatch, "raftkv.sim.cli", code=3)
    assert main(["sim", "--seed", "7", "-h", "extra"]) == 3
    assert calls == [["--seed", "7", "-h", "extra"]]


@pytest.mark.parametrize("verb", ["inspect", "verify"])
def test_wal_goes_to_storage_tools(monkeypatch: pytest.MonkeyPatch, verb: str) -> None:
    calls = _fake_module(monkeypatch, "raftkv.storage.tools", code=0)
    assert main(["wal", verb, "/some/dir"]) == 0
    assert calls == [[verb, "/some/dir"]]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"raftkv {raftkv.__version__}"


def test_version_matches_the_installed_metadata() -> None:
    assert raftkv.__version__ == importlib.metadata.version("raftkv")


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sim" in out and "wal" in out


@pytest.mark.parametrize("argv", [[], ["bogus"], ["--no-such-flag"], ["--", "sim"]])
def test_usage_error_is_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("raftkv: error: ")
    assert captured.err.count("\n") == 1


def test_python_dash_m_and_lazy_imports() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "raftkv", "--version"], capture_output=True, text=True, timeout=60
    )
    assert (version.returncode, version.stdout.strip()) == (0, f"raftkv {raftkv.__version__}")

    usage = subprocess.run([sys.executable, "-m", "raftkv"], capture_output=True, timeout=60)
    assert usage.returncode == 2

    # The dispatcher imports no subcommand module until that subcommand runs.
    probe = (
        "import sys, raftkv.cli; print(sorted(m for m in sys.modules if m.startswith('raftkv')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60
    )
    assert loaded.stdout.strip() == "['raftkv', 'raftkv.cli']"
