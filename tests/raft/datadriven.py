"""Golden protocol traces: scripts of ``command args`` / ``----`` / expected output.

Run with ``RAFTKV_REWRITE=1`` to rewrite the expected outputs from the current behaviour (then
read the diff: it is the protocol's behaviour). The format follows etcd-io/raft's datadriven tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Case:
    line: int
    cmd: str
    args: list[str]
    expected: str
    comments: list[str]


def parse(text: str) -> list[Case]:
    cases: list[Case] = []
    lines = text.splitlines()
    i = 0
    comments: list[str] = []
    while i < len(lines):
        raw = lines[i].strip()
        if raw.startswith("#"):
            comments.append(raw)
        if not raw or raw.startswith("#"):
            i += 1
            continue
        start = i + 1
        parts = raw.split()
        i += 1
        if i >= len(lines) or lines[i].strip() != "----":
            raise ValueError(f"line {start}: expected ---- after {raw!r}")
        i += 1
        out: list[str] = []
        while i < len(lines) and lines[i].strip() != "":
            out.append(lines[i])
            i += 1
        cases.append(Case(start, parts[0], parts[1:], "\n".join(out), comments))
        comments = []
    return cases


def render(cases: list[Case], outputs: list[str]) -> str:
    blocks = []
    for c, out in zip(cases, outputs, strict=True):
        head = "".join(ln + "\n" for ln in c.comments)
        blocks.append(head + " ".join([c.cmd, *c.args]) + "\n----\n" + (out or "ok"))
    return "\n\n".join(blocks) + "\n"


def run_file(path: Path, run: Callable[[Case], str]) -> None:
    text = path.read_text()
    cases = parse(text)
    outputs = [run(c) for c in cases]
    if os.environ.get("RAFTKV_REWRITE"):
        path.write_text(render(cases, outputs))
        return
    for c, out in zip(cases, outputs, strict=True):
        got = out or "ok"
        assert got == c.expected, (
            f"{path.name}:{c.line}: {c.cmd} {' '.join(c.args)}\n"
            f"--- expected\n{c.expected}\n--- got\n{got}"
        )
