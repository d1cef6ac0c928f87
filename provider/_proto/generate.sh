#!/bin/sh
# Regenerate the protobuf and gRPC stubs of provider/_proto/*.proto (needs grpcio-tools).
# Run from anywhere; the generated modules import each other as provider._proto.*.
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
python -m grpc_tools.protoc -I . --python_out=. --grpc_python_out=. --pyi_out=. \
  provider/_proto/tfplugin6.proto provider/_proto/goplugin.proto provider/_proto/health.proto
