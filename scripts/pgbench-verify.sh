#!/usr/bin/env bash
# What PostgreSQL alone can do, on this machine, with the statements one
# TOTP one-call verification sends to it (docs/benchmarks.md, "PostgreSQL
# alone: the floor"). A private cluster configured as the benchmarks
# configure theirs (internal/pgtest: fsync on, shared_buffers 64MB), with
# keyfleet's schema (the Up parts of daemon/store/postgres/migrations)
# and as many users, factors and policy facts as BenchmarkAPIVerifyTOTP,
# records of the sizes it stores; then Debian's pgbench replays, from
# CLIENTS connections (default 16), what keyfleetd sends per group commit
# of GROUP verifications (default 2), statement for statement, in the
# same transactions and the same round trips, as pg_stat_statements
# showed it for the benchmark:
#   - per verification, the token check (one statement, its own round
#     trip), and with FIRST percent chance (default 0: a keyfleetd that
#     has run a while) the first-use reads of its user (policy facts, then
#     the check of the cached policy note: two round trips);
#   - one round trip: BEGIN, each verification's factor update (guarded
#     by its row version) and policy fact upsert, the check of every
#     record read (share-locked), the ordering lock and the transaction id;
#   - one round trip: the wait for the previous commit's ordering lock,
#     the head's guarded update, each verification's audit record, the
#     wake-up of the other keyfleetd, synchronous_commit off, COMMIT;
#   - with BARRIER percent chance (default 80: the benchmark's 0.36
#     barriers per verification at 2.2 per group) the barrier, which
#     writes a log record and waits for the disk.
# It prints verifications per second and the CPU per verification of
# PostgreSQL's processes and of pgbench; 2 cores divided by PostgreSQL's
# is what it could do with the cores to itself.
# Two variants price what keyfleetd does not do (yet): ONE_TRIP=1 sends
# a group commit in one round trip (its checks failing the transaction in
# PostgreSQL instead of in keyfleetd between the two), TOKEN=0 leaves out
# the token check's round trip (a token checked with the commit's other
# reads).
#   GROUP=n CLIENTS=n SECONDS_=n (default 20) FIRST=pct BARRIER=pct RUNS=n (default 1)
#   BENCH_LOCK=file: each run holds flock on it (the house's benchmark
#   lock, /tmp/keyfleet-bench.lock), the cluster's set-up does not
set -euo pipefail
cd "$(dirname "$0")/.."
GROUP=${GROUP:-2}
CLIENTS=${CLIENTS:-16}
DURATION=${SECONDS_:-20}
FIRST=${FIRST:-0}
BARRIER=${BARRIER:-80}
RUNS=${RUNS:-1}
ONE_TRIP=${ONE_TRIP:-0}
TOKEN=${TOKEN:-1}
BINDIR=/usr/lib/postgresql/15/bin
for p in "$BINDIR/initdb" "$BINDIR/pgbench"; do
	[ -x "$p" ] || { echo "$p is missing: apt-get install postgresql (scripts/deps.sh test)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing: apt-get install time" >&2; exit 1; }

dir=$(mktemp -d /tmp/keyfleet-pgbench-XXXXXX)
chmod 755 "$dir"
run=()
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	run=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop() {
	"${run[@]}" "$BINDIR/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT
"${run[@]}" "$BINDIR/initdb" -D "$dir/data" -A trust -U keyfleet --no-sync -E UTF8 >/dev/null
"${run[@]}" "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 start \
	-o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200 -c shared_buffers=64MB" >/dev/null
psql=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U keyfleet)
"${psql[@]}" -d postgres -c "CREATE DATABASE bench"
for f in daemon/store/postgres/migrations/*.sql; do
	awk '/\+goose Up/ {on = 1; next} /\+goose Down/ {on = 0} on' "$f"
done | "${psql[@]}" -d bench

# Data as BenchmarkAPIVerifyTOTP's (1,200 users of two TOTP factors, a
# few hundred others; records sealed: random bytes of the sizes stored).
# Keys are 30 characters: a 15-character prefix and a 15-digit number.
"${psql[@]}" -d bench <<'SQL'
CREATE FUNCTION rnd(n int) RETURNS bytea LANGUAGE sql AS $$ SELECT decode(string_agg(lpad(to_hex((random() * 255)::int), 2, '0'), ''), 'hex') FROM generate_series(1, n) $$;
INSERT INTO users SELECT 'user_06h50r4nb6' || (100000000000000 + i), rnd(32), rnd(40), 'active', rnd(427) FROM generate_series(0, 1999) i;
INSERT INTO factors SELECT 'ffac_06h50r4nb6' || (100000000000000 + i), 'user_06h50r4nb6' || (100000000000000 + i / 2), '', 'active', 'totp', rnd(470) FROM generate_series(0, 3199) i;
INSERT INTO tokens VALUES ('tokn_06h50r4nb6100000000000000', 'user_06h50r4nb6100000000001999', rnd(347));
INSERT INTO policy_facts SELECT 'user_06h50r4nb6' || (100000000000000 + i / 3), 'ffac_06h50r4nb6' || (100000000000000 + i), rnd(84) FROM generate_series(0, 5199) i;
INSERT INTO singletons VALUES ('breakglass', rnd(247));
INSERT INTO audit (seq, target, actor, action, rec) SELECT i, 'user_06h50r4nb6' || (100000000000000 + i % 2000), 'user_06h50r4nb6100000000001999', 'factor.verify', rnd(552) FROM generate_series(1, 9000) i;
UPDATE audit_head SET seq = 9000, hash = rnd(32);
VACUUM ANALYZE;
SQL

# The script of one group commit of GROUP verifications.
script=$dir/group.sql
rec470=$("${psql[@]}" -d bench -Atc "SELECT encode(rnd(470), 'hex')")
rec84=$("${psql[@]}" -d bench -Atc "SELECT encode(rnd(84), 'hex')")
rec552=$("${psql[@]}" -d bench -Atc "SELECT encode(rnd(552), 'hex')")
hash=$("${psql[@]}" -d bench -Atc "SELECT encode(rnd(32), 'hex')")
{
	users=()
	for i in $(seq 1 "$GROUP"); do
		echo "\\set u$i 100000000000000 + random(0, 1199)"
		echo "\\set f$i 100000000000000 + 2 * (:u$i - 100000000000000)"
		users+=("'user_06h50r4nb6' || :u$i")
	done
	for i in $(seq 1 "$GROUP"); do
		[ "$TOKEN" = 1 ] && echo "SELECT t.rec, u.k, u.rec FROM tokens t LEFT JOIN users u ON u.k = t.user_id WHERE t.k = 'tokn_06h50r4nb6100000000000000';"
		echo "\\set first random(1, 100)"
		echo "\\if :first <= $FIRST"
		echo "SELECT sub, rec FROM policy_facts WHERE user_id = 'user_06h50r4nb6' || :u$i ORDER BY sub;"
		echo "SELECT 0::int4, k, xmin::text FROM singletons WHERE k = 'policy' FOR SHARE;"
		echo "\\endif"
	done
	echo "\\startpipeline"
	echo "BEGIN ISOLATION LEVEL READ COMMITTED;"
	for i in $(seq 1 "$GROUP"); do
		# xmin <> '' where keyfleetd compares it with the version read:
		# the same plan, and the row is written.
		echo "UPDATE factors SET user_id = 'user_06h50r4nb6' || :u$i, device_id = '', state = 'active', kind = 'totp', rec = '\\x$rec470' WHERE k = 'ffac_06h50r4nb6' || :f$i AND xmin::text <> '';"
		echo "INSERT INTO policy_facts (user_id, sub, rec) VALUES ('user_06h50r4nb6' || :u$i, 'ffac_06h50r4nb6' || :f$i, '\\x$rec84') ON CONFLICT (user_id, sub) DO UPDATE SET rec = EXCLUDED.rec;"
	done
	ulist=$(IFS=,; echo "${users[*]}")
	if [ "$GROUP" = 1 ]; then
		echo "WITH v0 AS (SELECT k, xmin::text AS x FROM first_applied WHERE k = ${users[0]} FOR SHARE), v1 AS (SELECT k, xmin::text AS x FROM singletons WHERE k = 'breakglass' FOR SHARE), v2 AS (SELECT k, xmin::text AS x FROM users WHERE k = ${users[0]} FOR SHARE) SELECT 0::int4 AS t, k, x FROM v0 UNION ALL SELECT 1::int4 AS t, k, x FROM v1 UNION ALL SELECT 2::int4 AS t, k, x FROM v2;"
	else
		echo "WITH v0 AS (SELECT k, xmin::text AS x FROM first_applied WHERE k = ANY(ARRAY[$ulist]) FOR SHARE), v1 AS (SELECT k, xmin::text AS x FROM singletons WHERE k = 'breakglass' FOR SHARE), v2 AS (SELECT k, xmin::text AS x FROM users WHERE k = ANY(ARRAY[$ulist]) FOR SHARE) SELECT 0::int4 AS t, k, x FROM v0 UNION ALL SELECT 1::int4 AS t, k, x FROM v1 UNION ALL SELECT 2::int4 AS t, k, x FROM v2;"
	fi
	echo "SELECT pg_current_xact_id()::text FROM pg_advisory_xact_lock(1, :client_id);"
	if [ "$ONE_TRIP" = 0 ]; then
		echo "\\endpipeline"
		echo "\\startpipeline"
	fi
	echo "SELECT pg_advisory_xact_lock(2, :client_id);"
	echo "WITH moved AS (UPDATE audit_head SET seq = seq + $GROUP, hash = '\\x$hash' WHERE seq > 0 AND hash <> '\\x00' RETURNING 1) SELECT 1 / count(*) FROM moved;"
	for i in $(seq 1 "$GROUP"); do
		echo "INSERT INTO audit (seq, target, actor, action, rec) VALUES ((SELECT seq FROM audit_head) - $((GROUP - i)), 'user_06h50r4nb6' || :u$i, 'user_06h50r4nb6100000000001999', 'factor.verify', '\\x$rec552');"
	done
	echo "SELECT pg_notify('keyfleet_audit', '1');"
	echo "SET LOCAL synchronous_commit = off;"
	echo "COMMIT;"
	echo "\\endpipeline"
	echo "\\set barrier random(1, 100)"
	echo "\\if :barrier <= $BARRIER"
	echo "SELECT pg_logical_emit_message(true, 'keyfleet', ''), seq, hash FROM audit_head;"
	echo "\\endif"
} >"$script"
[ -n "${SHOW_SCRIPT:-}" ] && cat "$script"

# CPU time (clock ticks) of the server's processes: the postmaster's own
# and that of its children it reaped (the backends of a pgbench run end
# with it), and the living children's (the checkpointer, the WAL writer).
pgcpu() {
	local pm total=0 st
	pm=$(head -1 "$dir/data/postmaster.pid")
	# Wait for the backends of the run to end and be reaped.
	while pgrep -P "$pm" -f 'keyfleet bench' >/dev/null; do sleep 0.1; done
	total=$(awk '{sub(/.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$pm/stat")
	for pid in $(pgrep -P "$pm"); do
		st=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$pid/stat" 2>/dev/null) || continue
		total=$((total + st))
	done
	echo "$total"
}
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg): GROUP=$GROUP CLIENTS=$CLIENTS FIRST=$FIRST% BARRIER=$BARRIER% ONE_TRIP=$ONE_TRIP TOKEN=$TOKEN ${DURATION}s"
for r in $(seq 1 "$RUNS"); do
	# The connections are opened before the count starts (pgbench
	# connects first), and the server's processes counted are those
	# that run through it.
	before=$(pgcpu)
	lock=()
	[ -n "${BENCH_LOCK:-}" ] && lock=(flock "$BENCH_LOCK")
	out=$("${lock[@]}" bash -c 'cut -d" " -f1 /proc/loadavg >"$0/load"; exec "$@"' "$dir" /usr/bin/time -f '%U %S' -o "$dir/time" "$BINDIR/pgbench" -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$script" \
		-h 127.0.0.1 -p "$port" -U keyfleet bench 2>&1) || { echo "$out" >&2; exit 1; }
	after=$(pgcpu)
	tps=$(echo "$out" | awk '/^tps = / {print $3}')
	groups=$(echo "$out" | awk '/number of transactions actually processed/ {print $NF}')
	failed=$(echo "$out" | awk '/number of failed transactions/ {print $5}')
	read -r u s <"$dir/time"
	awk -v tps="$tps" -v g="$GROUP" -v n="$groups" -v pg="$(( (after - before) * 1000000000 / $(getconf CLK_TCK) ))" -v u="$u" -v s="$s" -v failed="${failed:-0}" -v load="$(cat "$dir/load")" 'BEGIN {
		v = n * g
		printf "run: %.0f verifications/s (%.0f groups/s), PostgreSQL %.0f µs + pgbench %.0f µs CPU per verification, %s failed, load %s at the start\n", tps * g, tps, pg / 1000 / v, (u + s) * 1e6 / v, failed, load
	}'
done
