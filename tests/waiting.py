"""Waiting on a condition with a generous deadline, never a fixed sleep: shared by the test
folders that drive real processes (importable because ``tests/conftest.py`` puts this folder on
the import path)."""

from __future__ import annotations

import time
from collections.abc import Callable

DEADLINE = 20.0
"""Seconds a real-process test waits for a condition before it fails."""


def wait_until(pred: Callable[[], bool], timeout: float = DEADLINE, what: str = "") -> None:
    """Poll ``pred`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or pred}")
        time.sleep(0.05)
