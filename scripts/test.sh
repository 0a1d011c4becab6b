#!/usr/bin/env bash
# The project's checks: ruff, mypy --strict on the whole package, and the test suite.
# Creates .venv with the dev tools when it is missing or older than pyproject.toml.
# Arguments go to pytest, e.g. ./scripts/test.sh -k layering
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.raftkv-dev-installed
if [[ ! -x .venv/bin/python || ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    echo "test.sh: installing raftkv[dev] into .venv" >&2
    "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -q -e '.[dev]'
    touch "$stamp"
fi

# Tools some tests drive for real: Debian's etcd (etcdctl and etcd 3.4) and Chromium. Under
# CI=true a failed install fails the run; elsewhere those tests skip with the reason.
for ensure in scripts/ensure_deps.sh scripts/ensure_browser.sh; do
    if [[ -x $ensure ]] && ! "$ensure"; then
        if [[ ${CI:-} == true ]]; then
            echo "test.sh: $ensure failed" >&2
            exit 1
        fi
        echo "test.sh: $ensure failed; the tests that need it will skip" >&2
    fi
done

lint_paths=(src tests scripts)
[[ -d bench ]] && lint_paths+=(bench)
.venv/bin/ruff check --no-cache "${lint_paths[@]}"  # no cache: a stale one hid import-order errors once
.venv/bin/mypy --strict src/raftkv

status=0
.venv/bin/pytest -n 2 "$@" || status=$?
if ((status == 5)); then
    echo "test.sh: pytest collected no tests" >&2
fi
exit "$status"
