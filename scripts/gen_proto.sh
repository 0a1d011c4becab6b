#!/usr/bin/env bash
# Regenerate the Python stubs of raftkv's etcd v3 .proto files (proto/raftkv/server/etcdpb/)
# into src/raftkv/server/etcdpb/: *_pb2.py and *_pb2.pyi (protobuf messages and their types)
# and rpc_grpc.py (grpclib service bases). Each generated file gets two pragma lines on top so
# that ruff and mypy --strict leave generated code alone.
#
# Needs grpcio-tools (protoc) and grpclib (its protoc plugin), at the pinned versions:
#   pip install grpcio-tools==1.85.1 grpclib==0.4.9
# Usage: scripts/gen_proto.sh [OUT_DIR]   (OUT_DIR default: src; the stubs land in
# OUT_DIR/raftkv/server/etcdpb/). Uses $PYTHON, else .venv/bin/python, else python3.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/src}"
py="${PYTHON:-}"
if [[ -z "$py" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then py="$root/.venv/bin/python"; else py=python3; fi
fi
plugin="$(dirname "$py")/protoc-gen-grpclib_python"
[[ -x "$plugin" ]] || plugin="$(command -v protoc-gen-grpclib_python)"
pkg="$out/raftkv/server/etcdpb"
mkdir -p "$pkg"
cd "$root/proto"
"$py" -m grpc_tools.protoc -I . \
  --plugin=protoc-gen-grpclib_python="$plugin" \
  --python_out="$out" --pyi_out="$out" --grpclib_python_out="$out" \
  raftkv/server/etcdpb/kv.proto raftkv/server/etcdpb/rpc.proto
# kv.proto declares no service: its grpclib module would be empty.
rm -f "$pkg/kv_grpc.py"
for f in kv_pb2.py kv_pb2.pyi rpc_pb2.py rpc_pb2.pyi rpc_grpc.py; do
  { printf '# ruff: noqa\n# mypy: ignore-errors\n'; cat "$pkg/$f"; } > "$pkg/$f.tmp"
  mv "$pkg/$f.tmp" "$pkg/$f"
done
