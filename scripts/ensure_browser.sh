#!/usr/bin/env bash
# Make sure a browser for the dashboard's tests (tests/dashboard) is installed: Debian's Chromium
# at /usr/bin/chromium (or $RAFTKV_CHROMIUM). Playwright's own browser download is not used.
# Installs with apt-get when missing (needs root, or sudo without a password). Prints the
# versions of the browser and of Playwright for Python. Exit 0 when a browser is there.
set -euo pipefail
cd "$(dirname "$0")/.."

browser=${RAFTKV_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $browser ]]; then
    echo "ensure_browser.sh: $browser missing; installing Debian's chromium" >&2
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "ensure_browser.sh: error: not root and no passwordless sudo; run: apt-get install -y chromium" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -x $browser ]]; then
    echo "ensure_browser.sh: error: $browser still missing after apt-get install" >&2
    exit 1
fi
echo "browser: $("$browser" --version 2>/dev/null || echo "$browser (version unknown)")"
py=.venv/bin/python
[[ -x $py ]] || py=python3
echo "playwright: $("$py" -c 'from importlib.metadata import version; print(version("playwright"))' 2>/dev/null || echo "not installed (pip install playwright==1.55.0)")"
