#!/usr/bin/env bash
# Regenerates the committed protobuf code for the factor plugin protocol
# (plugins/sdk/internal/factorpb). Needs protoc (Debian: protobuf-compiler);
# the Go generators come from the Go module proxy at pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."

PROTOC_GEN_GO=google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC=google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2

command -v protoc >/dev/null || { echo "generate: protoc is missing (apt-get install protobuf-compiler)" >&2; exit 1; }

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
GOBIN="$bin" go install "$PROTOC_GEN_GO"
GOBIN="$bin" go install "$PROTOC_GEN_GO_GRPC"

dir=plugins/sdk/internal/factorpb
PATH="$bin:$PATH" protoc -I "$dir" \
  --go_out="$dir" --go_opt=paths=source_relative \
  --go-grpc_out="$dir" --go-grpc_opt=paths=source_relative \
  "$dir/factor.proto"
echo "generate: wrote $dir/factor.pb.go and $dir/factor_grpc.pb.go"
