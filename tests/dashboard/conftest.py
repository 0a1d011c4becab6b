"""Fixtures for the dashboard's browser tests: Debian's Chromium driven by Playwright.

Without a browser that Playwright can drive, the browser tests are skipped with the reason —
except under ``CI=true``, where they fail and print both versions. ``scripts/ensure_browser.sh``
installs Chromium when it is missing.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dash_helpers import ARTIFACTS, start_cluster

from raftkv.dashboard import DashboardThread, make_app
from raftkv.localcluster import LocalCluster

CHROMIUM = os.environ.get("RAFTKV_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
]  # fmt: skip


def _versions() -> str:
    try:
        from importlib.metadata import version

        pw = version("playwright")
    except Exception:
        pw = "not installed"
    try:
        out = subprocess.run(
            [CHROMIUM, "--version"], capture_output=True, text=True, timeout=20
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as e:
        out = f"{CHROMIUM}: {e}"
    return f"playwright {pw}; browser: {out or 'unknown'}"


def _unavailable(reason: str) -> None:
    msg = f"no drivable browser: {reason} ({_versions()})"
    if os.environ.get("CI") == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A persistent Chromium context with a fresh user data dir."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _unavailable(f"playwright is not installed ({e})")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} not found (run scripts/ensure_browser.sh)")
    pw = sync_playwright().start()
    try:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
    except Exception as e:
        pw.stop()
        _unavailable(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield ctx
    finally:
        ctx.close()
        pw.stop()


@pytest.fixture(scope="module")
def live(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalCluster, str]]:
    """A 3-member cluster (election timeout 500 ms) and a dashboard with controls on it."""
    c = start_cluster(tmp_path_factory.mktemp("cluster"))
    dash = DashboardThread(lambda: make_app(cluster=c), port=0).start()
    try:
        yield c, dash.url
    finally:
        dash.stop()
        c.kill_all()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    p = browser.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield p
    finally:
        p.close()
    assert not errors, f"JavaScript errors on the page ({len(errors)}): {errors[:5]}"


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
