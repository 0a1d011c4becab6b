#!/usr/bin/env bash
# What the test suite needs besides raftkv's own venv:
#  1. the real etcdctl and etcd 3.4 from Debian (etcd-client, etcd-server): installed when
#     missing; the server package may start an etcd service on 2379/2380, which is stopped and
#     disabled at once (the tests start their own members on free ports);
#  2. one venv per etcd Python client (tests/etcd/test_python_clients.py), pinned, under
#     .venv/clients/NAME: aetcd (gRPC) and etcd3gw (JSON gateway).
# Each part is a no-op when already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v etcdctl >/dev/null 2>&1 || ! command -v etcd >/dev/null 2>&1; then
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq etcd-client etcd-server >/dev/null
    if command -v systemctl >/dev/null 2>&1; then
        "${sudo[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
    if command -v service >/dev/null 2>&1; then
        "${sudo[@]}" service etcd stop >/dev/null 2>&1 || true
    fi
    command -v etcdctl >/dev/null && command -v etcd >/dev/null
fi

client_venv() {  # NAME PIP-REQUIREMENT...
    local name=$1
    shift
    local dir=.venv/clients/$name stamp=.venv/clients/$name/.installed
    if [[ -f $stamp && "$(cat "$stamp")" == "$*" ]]; then
        return 0
    fi
    rm -rf "$dir"
    "${PYTHON:-python3}" -m venv "$dir"
    "$dir/bin/python" -m pip install -q "$@"
    echo "$*" >"$stamp"
}
client_venv aetcd aetcd==1.0.0 grpcio==1.85.3 protobuf==7.36.2
client_venv etcd3gw etcd3gw==2.7.0 requests==2.34.2 futurist==3.5.0 pbr==7.1.3
