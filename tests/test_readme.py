"""The README's promises: exactly two commands, and both of them work.

CI runs the test command from a clean clone (which exercises the install); here the main
command's last part, ``raftkv cluster``, runs with the current environment's ``raftkv`` on its
defaults — the fixed ports 2379/22379/32379 a user gets — and the CLI's defaults reach it; the
README's code example runs as written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def marked_command(name: str) -> str:
    """The one line inside ``<!-- name -->`` ```sh ... ``` ``<!-- /name -->``."""
    blocks = re.findall(rf"<!-- {name} -->\n```sh\n(.*?)```\n<!-- /{name} -->", README, re.S)
    assert len(blocks) == 1, f"README needs exactly one {name} block"
    lines = blocks[0].splitlines()
    assert len(lines) == 1, f"the {name} must be one line"
    return lines[0]


def test_exactly_two_marked_commands() -> None:
    markers = ["main-command", "/main-command", "test-command", "/test-command"]
    assert re.findall(r"<!-- (\S+) -->", README) == markers
    marked_command("main-command")
    marked_command("test-command")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_the_main_command_runs_a_cluster_that_the_cli_reaches(tmp_path: Path) -> None:
    command = marked_command("main-command")
    last = shlex.split(command.split("&&")[-1])
    assert last[:2] == [".venv/bin/raftkv", "cluster"], command
    raftkv = str(Path(sys.executable).parent / "raftkv")
    last[0] = raftkv
    proc = subprocess.Popen(
        last, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + 30
        got = None
        while time.monotonic() < deadline and proc.poll() is None:
            children = children or _children(proc.pid)
            put = subprocess.run([raftkv, "put", "readme", "works"], capture_output=True,
                                 text=True, cwd=tmp_path, timeout=30)
            if put.returncode == 0:
                got = subprocess.run([raftkv, "get", "readme"], capture_output=True, text=True,
                                     cwd=tmp_path, timeout=30)
                break
            time.sleep(0.2)
        assert got is not None, "the cluster never answered a put on the CLI's default endpoints"
        children = _children(proc.pid)
        assert got.returncode == 0 and got.stdout == "readme\nworks\n", got.stdout + got.stderr
        assert len(children) == 3
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "2379" in out and "etcdctl" in out  # it printed the endpoints and a line to try
        for pid in children:  # no member left behind
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"member {pid} is still running")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_ci_runs_the_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[0] == "#!/usr/bin/env bash"
    last = [line for line in ci if line.strip() and not line.startswith("#")][-1]
    assert last.removeprefix("exec ") == marked_command("test-command")
    for script in (ROOT / ".ci" / "run", ROOT / "scripts" / "test.sh"):
        assert script.stat().st_mode & 0o111, f"{script} is not executable"


def test_the_code_example_runs() -> None:
    (example,) = re.findall(r"```python\n(.*?)```", README, re.S)
    exec(compile(example, "README.md", "exec"), {"__name__": "readme_example"})
