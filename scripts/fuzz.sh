#!/usr/bin/env bash
# Runs every Go fuzz target for a bounded time each: `scripts/fuzz.sh 3s`
# in make test, `make fuzz` (60s each) for longer runs. The seed corpus
# (from testdata and f.Add) always runs as part of plain `go test` too.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-10s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg=./$(dirname "${file#./}")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz: $pkg $target for $budget"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" "$pkg" > /tmp/keyfleet-fuzz.$$.log 2>&1 ||
      { cat /tmp/keyfleet-fuzz.$$.log; rm -f /tmp/keyfleet-fuzz.$$.log; exit 1; }
  done
done
rm -f /tmp/keyfleet-fuzz.$$.log
