#!/usr/bin/env bash
# The deployed-daemon benchmark (make bench runs it at the end of scripts/bench.sh):
# keyfleetd started from its binary, TOTP through keyfleet-plugin-totp
# configured as docs/plugins.md says, driven by keyfleet-loadgen from
# another process on the same machine. Each of RUNS runs (default 3)
# starts keyfleetd, times its start-up, warms it, then prints for
# TOTP one call (16 and 64 clients) and begin + finish (16 clients):
# throughput, p50/p95/p99 (connections opened before the timer starts),
# CPU per verification of keyfleetd, the plugin
# and the load generator, and peak RSS, with pquerna/otp's own check
# timed in the same run; then POST /v1/users from 16 clients.
#
# The users with TOTP factors are made once (their first enrolment costs
# ten argon2id hashes each: about 8 minutes for the default 3,000) and
# kept in BENCH_DIR (default var/bench/deployed) between runs. A run uses
# every factor's next two time steps, so runs wait up to a minute for
# fresh ones.
#   BIN=dir       binaries to measure (default bin; make build-pure)
#   BENCH_DIR=dir where the data folder and fixture are kept
#   RUNS=n        runs (default 3); TOTP_USERS=n (default 3000)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-bin}")
DIR=${BENCH_DIR:-var/bench/deployed}
RUNS=${RUNS:-3}
TOTP_USERS=${TOTP_USERS:-3000}
mkdir -p "$DIR"
DIR=$(realpath "$DIR")
DATA=$DIR/data
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_setup bench-deployed

if [[ ! -e $DIR/fixture.json ]]; then
	rm -rf "$DATA" "$DATA.checkpoint"
	"$BIN/keyfleetd" init --data "$DATA" >/dev/null
	install_plugin "$DATA"
	KEYFLEET_TRUSTED_PROXIES=127.0.0.1/32 start_daemon "$DATA" >/dev/null
	echo "# making $TOTP_USERS users with two TOTP factors each (kept in $DIR)"
	"$LG" fixture "${T[@]}" --users "$TOTP_USERS" --out "$DIR/fixture.json.new"
	mv "$DIR/fixture.json.new" "$DIR/fixture.json"
	stop_daemon
fi
install_plugin "$DATA" # the binaries measured may have changed since

echo "# deployed keyfleetd ($("$BIN/keyfleetd" --version)), TOTP through keyfleet-plugin-totp; $(nproc) cores; load average $(cut -d' ' -f1 /proc/loadavg)"
for run in $(seq "$RUNS"); do
	echo "## run $run; $(uptime)"
	start_daemon "$DATA"
	S=(--pid "$PID")
	"$LG" warm "${T[@]}" "${S[@]}" --fixture "$DIR/fixture.json"
	"$LG" verify "${T[@]}" "${S[@]}" --fixture "$DIR/fixture.json" --mode one-call --clients 16
	"$LG" verify "${T[@]}" "${S[@]}" --fixture "$DIR/fixture.json" --mode begin-finish --clients 16
	"$LG" verify "${T[@]}" "${S[@]}" --fixture "$DIR/fixture.json" --mode one-call --clients 64
	"$LG" create-users "${T[@]}" "${S[@]}" --n 10000 --clients 16
	stop_daemon
done
