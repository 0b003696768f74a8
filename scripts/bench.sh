#!/usr/bin/env bash
# Runs every benchmark and prints the figures that docs/benchmarks.md
# records. BENCHTIME (default 3s) and COUNT (default 1) tune the run.
# BENCH_LARGE=1 runs the store's bulk policy benchmark over 1,000,000
# users instead of 100,000 (about 4 GB in the temporary folder and several
# minutes to build; see docs/policy.md).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(go version | cut -d' ' -f3)"
filter() { grep -E '^(Benchmark|ok|FAIL|---)' | grep -v 'no test files'; }
# Every benchmark but those with costly fixtures, by time.
go test -run '^$' -bench . -skip 'APIVerifyTOTP|DaemonEnrolmentFinish|Sync|PushOpenChannels' -benchtime "${BENCHTIME:-3s}" -count "${COUNT:-1}" ./... 2>&1 | filter
# Enrolment finishes need a fresh enrolment (and, for a first factor, ten
# Argon2id hashes) prepared per operation: a fixed count.
go test -run '^$' -bench 'DaemonEnrolmentFinish' -benchtime 200x -count "${COUNT:-1}" ./cmd/keyfleet-agent/ 2>&1 | filter
# Push companions holding their streams open: 10,000 of them, enrolled
# first (most of the time), measured once.
go test -run '^$' -bench 'PushOpenChannels' -benchtime 1x -count "${COUNT:-1}" ./daemon/ 2>&1 | filter
# TOTP verifications use each enrolled factor's fresh codes once: a fixed count.
go test -run '^$' -bench 'APIVerifyTOTP' -benchtime 1500x -count "${COUNT:-1}" ./daemon/ 2>&1 | filter
# Directory syncs of 100,000 users build a store (and a slapd) per run and
# take seconds each: a fixed count (docs/benchmarks.md, "Directory sync").
go test -run '^$' -bench 'Sync' -benchtime 1x -count "${COUNT:-1}" ./daemon/directory/ 2>&1 | filter
