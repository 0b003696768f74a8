#!/usr/bin/env bash
# Runs every benchmark and prints the figures that docs/benchmarks.md
# records. BENCHTIME (default 3s) and COUNT (default 1) tune the run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(go version | cut -d' ' -f3)"
go test -run '^$' -bench . -benchtime "${BENCHTIME:-3s}" -count "${COUNT:-1}" ./... 2>&1 |
  grep -E '^(Benchmark|ok|FAIL|---)' | grep -v 'no test files'
