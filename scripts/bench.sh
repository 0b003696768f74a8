#!/usr/bin/env bash
# Runs every benchmark and prints the figures that docs/benchmarks.md
# records, then the issue's figures side by side: each on Badger and on
# PostgreSQL (a private cluster the benchmarks start), and PostgreSQL with
# two keyfleetd on one database. BENCHTIME (default 3s) and COUNT
# (default 1) tune the run.
#
# Data that takes minutes to build is kept in var/bench
# (KEYFLEET_BENCH_KEEP) and built only by the first run: the users with
# TOTP factors (about three minutes: a first enrolment costs ten Argon2id
# hashes) and a million users with two factors each on both backends
# (at most about 4 GB for Badger, measured before its tables were
# compressed, and 6.5 GB for PostgreSQL with its log, four to
# five minutes each).
# BENCH_LARGE=0 runs the bulk policy benchmarks over 100,000 users built
# afresh instead. rm -rf var/bench to start over.
#
# Then the deployed daemon (scripts/bench-deployed.sh): keyfleetd and
# keyfleet-plugin-totp from BIN (default bin), driven by keyfleet-loadgen
# from another process; its users with TOTP factors are kept in
# var/bench/deployed. BENCH_DEPLOYED=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYFLEET_BENCH_KEEP="${KEYFLEET_BENCH_KEEP:-$PWD/var/bench}"
export KEYFLEET_BENCH_DATA="${KEYFLEET_BENCH_DATA:-$KEYFLEET_BENCH_KEEP/totp}"
if [ "${BENCH_LARGE:-1}" = 0 ]; then unset BENCH_LARGE; else export BENCH_LARGE=1; fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(go version | cut -d' ' -f3), load average $(cut -d' ' -f1-3 /proc/loadavg)"
filter() { grep -E '^(pkg:|Benchmark|ok|FAIL|---|    )' | grep -v 'no test files' | tee -a "$out"; }
# A package whose benchmarks fail does not stop the others; the script
# fails at the end.
status=0
# Every benchmark but those with costly fixtures, by time.
go test -run '^$' -bench . -skip 'APIVerifyTOTP|DaemonEnrolmentFinish|Sync' -benchtime "${BENCHTIME:-3s}" -count "${COUNT:-1}" -timeout 60m ./... 2>&1 | filter || status=1
# Enrolment finishes need a fresh enrolment (and, for a first factor, ten
# Argon2id hashes) prepared per operation: a fixed count.
go test -run '^$' -bench 'DaemonEnrolmentFinish' -benchtime 200x -count "${COUNT:-1}" ./cmd/keyfleet-agent/ 2>&1 | filter || status=1
# TOTP verifications use each enrolled factor's fresh codes once: a fixed
# count (each run has a fresh copy of the factors).
go test -run '^$' -bench 'APIVerifyTOTP' -benchtime 1500x -count "${COUNT:-1}" -timeout 60m ./daemon/ 2>&1 | filter || status=1
# Directory syncs of 100,000 users build a store (and a slapd) per run and
# take seconds each: a fixed count (docs/benchmarks.md, "Directory sync").
go test -run '^$' -bench 'Sync' -benchtime 1x -count "${COUNT:-1}" ./daemon/directory/ 2>&1 | filter || status=1

# The figures of issue 18, side by side (the last run of each).
awk '
/^pkg:/ { pkg = $2 }
function metric(unit,   i) { for (i = 3; i < NF; i++) if ($(i+1) == unit) return $i; return "" }
function cpu(   s) { s = metric("cpu-us/op"); if (metric("pg-cpu-us/op") != "") s = s "+" metric("pg-cpu-us/op"); return s }
/^BenchmarkAPIVerifyTOTP\/backend=badger\/one-call\/sinks=0-/                 { v["totp", "b"] = metric("verifications/s"); c["totp", "b"] = cpu() }
/^BenchmarkAPIVerifyTOTP\/backend=postgres\/one-call\/sinks=0-/               { v["totp", "p"] = metric("verifications/s"); c["totp", "p"] = cpu() }
/^BenchmarkAPIVerifyTOTP\/backend=postgres\/one-call\/sinks=0\/keyfleetd=2-/ { v["totp", "p2"] = metric("verifications/s"); c["totp", "p2"] = cpu() }
/^BenchmarkAPICreateUser\/backend=badger\/keyfleetd=1\/clients=16-/          { v["user", "b"] = metric("creates/s"); c["user", "b"] = cpu() }
/^BenchmarkAPICreateUser\/backend=postgres\/keyfleetd=1\/clients=16-/        { v["user", "p"] = metric("creates/s"); c["user", "p"] = cpu() }
/^BenchmarkAPICreateUser\/backend=postgres\/keyfleetd=2\/clients=16-/        { v["user", "p2"] = metric("creates/s"); c["user", "p2"] = cpu() }
/^BenchmarkBulkPolicy\/reevaluate\// { k = (pkg ~ /postgres$/) ? "p" : "b"; v["bulk", k] = metric("users/s"); c["bulk", k] = metric("cpu-us/user"); n = $1; sub(/.*reevaluate\//, "", n); sub(/-[0-9]+$/, "", n) }
function row(name, key, target) {
	printf "%-44s %12s %12s %12s   %s\n", name, v[key, "b"], v[key, "p"], (v[key, "p2"] == "" ? "-" : v[key, "p2"]), target
	printf "%-44s %12s %12s %12s\n", "  CPU µs per op (keyfleetd+clients[+PostgreSQL])", c[key, "b"], c[key, "p"], (c[key, "p2"] == "" ? "-" : c[key, "p2"])
}
END {
	printf "\n%-44s %12s %12s %12s   %s\n", "figure (per second)", "Badger", "PostgreSQL", "PG, 2×kfd", "target"
	row("TOTP one-call verifications, 16 clients", "totp", ">= 3,000/s")
	row("user creations with audit, 16 clients", "user", ">= 2,000/s")
	row("compliance re-evaluation, users (" n ")", "bulk", ">= 200,000/s")
}' "$out"

if [ "${BENCH_DEPLOYED:-1}" != 0 ]; then
	echo
	scripts/bench-deployed.sh || status=1
fi
exit $status
