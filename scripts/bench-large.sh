#!/usr/bin/env bash
# make bench-large: keyfleetd at an organisation's size. A store of
# USERS users (default 1,000,000, imported through POST /v1/users/import,
# one audit event each) and TOTP_USERS users with two TOTP factors is
# built once and kept in BENCH_DIR (default var/bench/large; about
# 450 MB, and an hour on the 2-core VM, most of it the argon2id hashes of
# the TOTP users' first enrolments). Each run copies it, as a bulk load
# leaves it, and prints:
#   - the first start after the bulk load: time to ready, memory, and when
#     the background audit check finished;
#   - the first page of user lists filtered by name, group, role and
#     status, and of audit lists filtered by action, actor and target;
#   - GET /v1/audit/verify over the whole chain (events/s);
#   - memory under 64 clients verifying TOTP codes through the plugin;
#   - a second start, and the lists again on it.
#   BIN=dir       binaries to measure (default bin; make build-pure)
#   BENCH_DIR=dir where the store is built and kept
#   USERS=n       imported users (default 1000000); TOTP_USERS=n (default 1000)
#   RUNS=n        runs (default 1); RUNS=0 only builds the store
#   MEMORY_LIMIT=512M  keyfleetd and its plugin in a memory group of that
#                 size, as the systemd unit's MemoryHigh= (bench-lib.sh);
#                 the group's memory is printed beside the process's
#   ONLY=lists    only the first start, the lists, a second start, the
#                 lists again, and the lists a third time while the
#                 second start's compliance sweep runs (no audit verify,
#                 no load): for work on the lists; each list also prints
#                 what keyfleetd read from the disk for it
#                 (/proc/PID/io read_bytes)
#   VERIFY=n      only the full audit verify: keyfleetd started on a copy
#                 of the store (made once, kept in BENCH_DIR/verify-data),
#                 its pages dropped from the page cache first (CACHE=cold),
#                 and, once the start's background work is done, n full
#                 verifies back to back, each with what it read from disk;
#                 a quick loop for work on verify
#   CACHE=cold    each run drops the copied store's pages from the page
#                 cache before the first start (as after a reboot), so
#                 that keyfleetd reads, and a memory group is charged
#                 for, what it maps; CACHE=warm leaves them (charged to
#                 this script's group, which a MemoryHigh does not reclaim)
# The store is built by the binaries of the first run; binaries of another
# version (an older keyfleetd) need a BENCH_DIR of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${BIN:-bin}")
DIR=${BENCH_DIR:-var/bench/large}
USERS=${USERS:-1000000}
TOTP_USERS=${TOTP_USERS:-1000}
RUNS=${RUNS:-1}
CACHE=${CACHE:-cold}
ONLY=${ONLY:-}
[[ -z $ONLY || $ONLY == lists ]] || { echo "ONLY=$ONLY: lists or nothing" >&2; exit 1; }
[[ $CACHE == cold || $CACHE == warm ]] || { echo "CACHE=$CACHE: cold or warm" >&2; exit 1; }
mkdir -p "$DIR"
DIR=$(realpath "$DIR")
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_setup bench-large

if [[ ! -e $DIR/built ]]; then
	rm -rf "$DIR/built-data" "$DIR/built-data.checkpoint" "$DIR/fixture.json"
	"$BIN/keyfleetd" init --data "$DIR/built-data" >/dev/null
	install_plugin "$DIR/built-data"
	KEYFLEET_TRUSTED_PROXIES=127.0.0.1/32 MEMORY_LIMIT= start_daemon "$DIR/built-data" >/dev/null
	echo "# building the large store in $DIR: $TOTP_USERS users with two TOTP factors, then $USERS imported"
	"$LG" fixture "${T[@]}" --users "$TOTP_USERS" --out "$DIR/fixture.json"
	"$LG" import "${T[@]}" --users "$USERS"
	stop_daemon
	touch "$DIR/built"
fi

echo "# keyfleetd at scale ($("$BIN/keyfleetd" --version)); $(nproc) cores; load average $(cut -d' ' -f1 /proc/loadavg); memory limit ${MEMORY_LIMIT:-none}; page cache $CACHE at the first start; $(uptime)"
# drop_page_cache DIR writes DIR's files out and drops their pages from
# the page cache (posix_fadvise DONTNEED, through dd), and prints how much
# of them is still resident.
drop_page_cache() {
	find "$1" -type f -exec sync -- {} +
	find "$1" -type f -exec sh -c 'for f; do dd if="$f" iflag=nocache count=0 status=none; done' sh {} +
	echo "store pages in the page cache before the start: $(find "$1" -type f -exec fincore --bytes --noheadings --output RES {} + | awk '{ s += $1 } END { printf "%.0f MiB", s / 1048576 }')"
}
# lists prints the first page of each user list and audit filter.
lists() {
	local q
	for q in "q=nobody-matches-this" "q=u-09999" "q=USER%200999" "group=auditors-2026" "group=engineering" "role=auditor" "status=disabled"; do
		get "/v1/users?$q"
	done
	for q in "action=factor.revoke" "action=user.create" "actor=$admin_id" "target=$target_id" "actor=$admin_id&action=factor.revoke"; do
		get "/v1/audit?$q"
	done
}
# get times one page (a failure is printed, and is a figure too); with
# ONLY=lists it also prints what keyfleetd read from the disk for it.
get() {
	local before=
	[[ -z $ONLY ]] || before=$(read_bytes)
	"$LG" get "${T[@]}" "${S[@]}" "$1" || true
	[[ -z $ONLY ]] || echo "  read from the disk for it: $(( ($(read_bytes) - before) / 1024 )) KiB"
}
# wait_busy N waits up to N seconds for keyfleetd to start working on its
# own (a tenth of a CPU-second in a fifth of a second), and fails if it
# does not.
wait_busy() {
	local cpu last
	last=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
	for _ in $(seq $(($1 * 5))); do
		sleep 0.2
		cpu=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
		((cpu - last >= 10)) && return 0
		last=$cpu
	done
	return 1
}
read_bytes() { awk '$1 == "read_bytes:" { print $2 }' "/proc/$PID/io"; }
# measure prints one run's figures.
measure() {
	# A copy of the store as the bulk load left it, so that every run
	# measures the first start after it.
	DATA=$DIR/data
	rm -rf "$DATA" "$DATA.checkpoint"
	cp -a "$DIR/built-data" "$DATA"
	cp -a "$DIR/built-data.checkpoint" "$DATA.checkpoint"
	cp "$DIR/fixture.json" "$DIR/run-fixture.json"
	install_plugin "$DATA"
	echo "store: $(du -sh "$DATA/store" | cut -f1)"
	[[ $CACHE == warm ]] || drop_page_cache "$DATA"
	: >"$DIR/keyfleetd.log"
	echo "## first start after the bulk load"
	start_daemon "$DATA"
	S=(--pid "$PID")
	# The start-up audit check runs in the background: note when it ends.
	start=$(date +%s%N)
	for _ in $(seq 1200); do
		grep -q '"audit chain' "$DIR/keyfleetd.log" && break
		sleep 0.5
	done
	echo "start-up audit check: $(grep -o '"msg":"audit chain[^"]*"[^}]*' "$DIR/keyfleetd.log" | head -1) (seen $(( ($(date +%s%N) - start) / 1000000 )) ms after ready)"
	"$LG" mem "${T[@]}" "${S[@]}" --label "memory after the start-up check"
	memory_group_report "memory after the start-up check"

	echo "## lists at $USERS users (first page, 50 items)"
	admin_id=$("$LG" user-id "${T[@]}" admin)
	target_id=$("$LG" user-id "${T[@]}" "$(printf 'u-%07d' $((USERS / 2)))")
	lists
	if [[ $ONLY == lists ]]; then
		stop_daemon
		echo "## second start"
		start_daemon "$DATA"
		S=(--pid "$PID")
		echo "## lists again, on the second start"
		lists
		# A large store's first compliance sweep waits a minute after
		# the start (docs/operations.md, "Background work gives way"):
		# the lists once more while it runs, giving way to them. Until
		# then keyfleetd may be busy with Badger's compactions.
		while (($(date +%s) - STARTED < 58)); do sleep 1; done
		if wait_busy 90; then
			echo "## lists during the compliance sweep"
			lists
		else
			echo "## no compliance sweep began within 150 s of the second start"
		fi
		stop_daemon
		return
	fi
	echo "## audit verify"
	"$LG" verify-audit "${T[@]}" "${S[@]}" || true
	"$LG" verify-audit "${T[@]}" "${S[@]}" --full || true
	echo "## 64 clients verifying TOTP codes through the plugin"
	"$LG" warm "${T[@]}" "${S[@]}" --fixture "$DIR/run-fixture.json"
	memory_group_reset_peak
	"$LG" verify "${T[@]}" "${S[@]}" --fixture "$DIR/run-fixture.json" --mode one-call --clients 64  || true
	"$LG" mem "${T[@]}" "${S[@]}" --label "memory after the load"
	memory_group_report "memory after the load"
	stop_daemon
	echo "## second start"
	start_daemon "$DATA"
	sleep 10
	"$LG" mem "${T[@]}" --pid "$PID" --label "memory 10 s after the second start"
	memory_group_report "memory 10 s after the second start"
	echo "## lists again, on the second start"
	S=(--pid "$PID")
	lists
	"$LG" mem "${T[@]}" "${S[@]}" --label "memory after the lists"
	memory_group_report "memory after the lists"
	stop_daemon
}

# verify_only prints n full verifies of one start (VERIFY=n).
verify_only() {
	DATA=$DIR/verify-data
	if [[ ! -d $DATA ]]; then
		cp -a "$DIR/built-data" "$DATA.new"
		cp -a "$DIR/built-data.checkpoint" "$DATA.new.checkpoint"
		mv "$DATA.new.checkpoint" "$DATA.checkpoint"
		mv "$DATA.new" "$DATA"
	fi
	install_plugin "$DATA"
	[[ $CACHE == warm ]] || drop_page_cache "$DATA"
	: >"$DIR/keyfleetd.log"
	start_daemon "$DATA"
	S=(--pid "$PID")
	for _ in $(seq 1200); do
		grep -q '"audit chain' "$DIR/keyfleetd.log" && break
		sleep 0.5
	done
	# The start's background work (the compliance sweep evaluates every
	# user) is over when keyfleetd's CPU time stands still for a second.
	local cpu last=-1 waited=0
	while cpu=$(awk '{ print $14 + $15 }' "/proc/$PID/stat") && ((cpu - last > 5 && waited < 120)); do
		last=$cpu
		sleep 1
		waited=$((waited + 1))
	done
	echo "keyfleetd idle ${waited} s after ready"
	local before
	for _ in $(seq "$VERIFY"); do
		before=$(read_bytes)
		"$LG" verify-audit "${T[@]}" "${S[@]}" --full || true
		echo "  read from disk: $(( ($(read_bytes) - before) / 1048576 )) MiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	done
	stop_daemon
}
if [[ -n ${VERIFY:-} ]]; then
	verify_only
	exit
fi

for run in $(seq "$RUNS"); do
	echo "## run $run; $(uptime)"
	measure
done
