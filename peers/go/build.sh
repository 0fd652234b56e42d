#!/usr/bin/env bash
# Builds peers/go/bin/kv-host and peers/go/bin/kv-plugin. Needs only a Go
# toolchain (>= 1.25, see go.mod); modules come from the module proxy and are
# checked against the committed go.sum (default -mod=readonly).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
mkdir -p bin
go build -trimpath -o bin/ ./cmd/...
