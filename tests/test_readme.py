"""The README's promises: exactly two commands, and both of them work.

CI runs the test command from a clean clone (which exercises the install); here the main
command's last part, ``raftkv sim``, runs with the current environment's ``raftkv``, and the
README's code example runs as written.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
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


def test_the_main_command_runs_the_simulator() -> None:
    command = marked_command("main-command")
    last = shlex.split(command.split("&&")[-1])
    assert last[0] == ".venv/bin/raftkv", command
    bin_dir = Path(sys.executable).parent
    last[0] = str(bin_dir / "raftkv")
    done = subprocess.run(last, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(r"seed=\S+.* ok\b", done.stdout), done.stdout + done.stderr


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
