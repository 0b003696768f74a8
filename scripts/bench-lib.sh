# Shared by scripts/bench-deployed.sh and scripts/bench-large.sh (sourced,
# not run): the load generator, the TOTP plugin pinned as docs/plugins.md
# describes, and keyfleetd started from its binary. The sourcing script
# sets BIN (the binaries measured) and DIR (its kept data) first.

# bench_setup NAME builds keyfleet-loadgen into DIR and checks that BIN
# holds what is measured.
bench_setup() {
	LG=$DIR/keyfleet-loadgen
	go build -o "$LG" ./internal/loadgen/cmd/keyfleet-loadgen
	local b
	for b in keyfleetd keyfleet-plugin-totp; do
		[[ -x $BIN/$b ]] || { echo "$1: $BIN/$b is missing; run make build-pure" >&2; exit 1; }
	done
}

# install_plugin DATA installs the TOTP plugin and pins it by its sha256
# in DATA's keyfleetd.yaml.
install_plugin() {
	mkdir -p "$DIR/plugins"
	install -m 0755 "$BIN/keyfleet-plugin-totp" "$DIR/plugins/keyfleet-plugin-totp"
	local sum
	sum=$(sha256sum "$DIR/plugins/keyfleet-plugin-totp" | cut -d' ' -f1)
	awk -v dir="$DIR/plugins" -v sum="$sum" '
		/^plugins:/ { print; print "  dir: " dir; print "  plugins:"; print "    - name: keyfleet-plugin-totp"; print "      sha256: " sum; skip = 1; next }
		skip && /^( |$)/ && !/^$/ { next }
		{ skip = 0; print }' "$1/keyfleetd.yaml" >"$1/keyfleetd.yaml.new"
	mv "$1/keyfleetd.yaml.new" "$1/keyfleetd.yaml"
}

# MEMORY_LIMIT (such as 512M; unset: none) runs keyfleetd and its plugins
# in a memory control group of that size, as the systemd unit's
# MemoryHigh= does (docs/operations.md, "Memory"). Where systemd runs, a
# transient scope with MemoryHigh=; elsewhere a group of the cgroup v1
# memory controller, under this script's own, with memory.limit_in_bytes:
# a hard limit, at which the kernel reclaims page cache (Badger's mapped
# tables among it) and, if what it cannot reclaim still exceeds it, kills
# a process of the group (it has no MemoryHigh). Each start gets a group
# of its own, removed when the daemon stops, as systemd does for a unit.
MEMORY_LIMIT=${MEMORY_LIMIT:-}
GROUP=   # the running daemon's memory group (its folder), if any
GROUP_V= # 1 or 2: its cgroup version
GROUP_UNIT= # cgroup v2: the systemd scope
GROUP_N=0
LAUNCH=()

# memory_group_new makes a memory group for the next start and sets
# LAUNCH to the command that runs a program inside it.
memory_group_new() {
	local bytes parent
	bytes=$(numfmt --from=iec "${MEMORY_LIMIT%B}" 2>/dev/null) || { echo "MEMORY_LIMIT=$MEMORY_LIMIT is not a size like 512M or 1G" >&2; exit 1; }
	GROUP_N=$((GROUP_N + 1))
	if [[ -d /run/systemd/system ]] && command -v systemd-run >/dev/null; then
		GROUP_UNIT=keyfleet-bench-$$-$GROUP_N.scope
		LAUNCH=(systemd-run --scope --quiet --collect --unit "$GROUP_UNIT" -p "MemoryHigh=$bytes" --)
		GROUP= # known once the scope runs: memory_group_report
		GROUP_V=2
		return
	fi
	parent=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ { print $3 }' /proc/self/cgroup)
	if [[ -z $parent || ! -w /sys/fs/cgroup/memory${parent%/} ]]; then
		echo "MEMORY_LIMIT needs systemd (systemd-run --scope) or a writable cgroup v1 memory controller at /sys/fs/cgroup/memory (as root); neither is here" >&2
		exit 1
	fi
	GROUP=/sys/fs/cgroup/memory${parent%/}/keyfleet-bench-$$-$GROUP_N
	GROUP_V=1
	mkdir "$GROUP"
	echo "$bytes" >"$GROUP/memory.limit_in_bytes"
	# shellcheck disable=SC2016 # expanded by the inner shell
	LAUNCH=(sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$GROUP")
}

# memory_group_gone removes the stopped daemon's group, once the last of
# its processes (a plugin ending after keyfleetd) has left it.
memory_group_gone() {
	if [[ $GROUP_V == 1 && -d $GROUP ]]; then
		local _
		for _ in $(seq 100); do
			rmdir "$GROUP" 2>/dev/null && break
			sleep 0.1
		done
		[[ ! -d $GROUP ]] || echo "could not remove the memory group $GROUP: $(cat "$GROUP/cgroup.procs" | tr '\n' ' ')" >&2
	fi
	GROUP= GROUP_V= GROUP_UNIT= LAUNCH=()
}

# memory_group_report LABEL prints the group's memory: what is charged to
# it now and at its peak since the last reset, and the anonymous, mapped
# file and page-cache parts.
memory_group_report() {
	if [[ $GROUP_V == 2 && -z $GROUP ]]; then
		GROUP=/sys/fs/cgroup$(systemctl show -P ControlGroup "$GROUP_UNIT")
	fi
	[[ -n $GROUP_V && -d $GROUP ]] || return 0
	local mib='{ printf "%.0f MiB", $1 / 1048576 }'
	if [[ $GROUP_V == 1 ]]; then
		echo "$1: memory group (limit $(awk "$mib" "$GROUP/memory.limit_in_bytes")): $(awk "$mib" "$GROUP/memory.usage_in_bytes") (peak $(awk "$mib" "$GROUP/memory.max_usage_in_bytes"); $(awk '$1 == "rss" || $1 == "mapped_file" || $1 == "cache" { printf "%s%s %.0f MiB", sep, $1, $2 / 1048576; sep = ", " }' "$GROUP/memory.stat")), reclaimed at the limit $(cat "$GROUP/memory.failcnt") times"
	else
		echo "$1: memory group (MemoryHigh $(awk "$mib" "$GROUP/memory.high")): $(awk "$mib" "$GROUP/memory.current") (peak $(awk "$mib" "$GROUP/memory.peak" 2>/dev/null || echo ?); $(awk '$1 == "anon" || $1 == "file_mapped" || $1 == "file" { printf "%s%s %.0f MiB", sep, $1, $2 / 1048576; sep = ", " }' "$GROUP/memory.stat")), over MemoryHigh $(awk '$1 == "high" { print $2 }' "$GROUP/memory.events") times"
	fi
}

# memory_group_reset_peak starts the group's peak again from now (cgroup
# v1; cgroup v2's memory.peak is the group's whole life).
memory_group_reset_peak() {
	if [[ $GROUP_V == 1 && -d $GROUP ]]; then
		echo 0 >"$GROUP/memory.max_usage_in_bytes"
	fi
}

PID=
PORT=
stop_daemon() {
	if [[ -n $PID ]]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
		PID=
	fi
	memory_group_gone
}
trap stop_daemon EXIT

# start_daemon DATA starts keyfleetd on DATA, sets T to the load
# generator's flags for it, and waits until it is ready, printing how
# long that took.
start_daemon() {
	PORT=$("$LG" free-port)
	local since
	LAUNCH=()
	[[ -z $MEMORY_LIMIT ]] || memory_group_new
	since=$(date +%s%N)
	STARTED=$(date +%s)
	"${LAUNCH[@]}" "$BIN/keyfleetd" serve --data "$1" --listen "127.0.0.1:$PORT" >>"$DIR/keyfleetd.log" 2>&1 &
	PID=$!
	T=(--ca "$1/tls/cert.pem" --token-file "$1/admin.token" --server "https://127.0.0.1:$PORT")
	"$LG" ready "${T[@]}" --since "$since" --pid "$PID"
}
