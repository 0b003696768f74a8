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

PID=
PORT=
stop_daemon() {
	if [[ -n $PID ]]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
		PID=
	fi
}
trap stop_daemon EXIT

# start_daemon DATA starts keyfleetd on DATA, sets T to the load
# generator's flags for it, and waits until it is ready, printing how
# long that took.
start_daemon() {
	PORT=$("$LG" free-port)
	local since
	since=$(date +%s%N)
	"$BIN/keyfleetd" serve --data "$1" --listen "127.0.0.1:$PORT" >>"$DIR/keyfleetd.log" 2>&1 &
	PID=$!
	T=(--ca "$1/tls/cert.pem" --token-file "$1/admin.token" --server "https://127.0.0.1:$PORT")
	"$LG" ready "${T[@]}" --since "$since" --pid "$PID"
}
