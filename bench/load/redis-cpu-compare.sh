#!/usr/bin/env bash
# Redis CPU per recorded share (accounting + statistics) of several Lode
# builds, alternated in one run, each with its own defaults (issue 14).
# Every run gets a fresh redis-server (AOF on, fsync everysec) and reports,
# per share recorded in Redis (the pool counter, read after the recorder
# stopped gracefully, so the last statistics are in):
#   - redis-server process CPU (/proc/<pid>/stat, from the server's start to
#     its stop), and
#   - INFO commandstats: usec and calls of EVALSHA (the share scripts) and
#     usec of every command.
# Loads (LOADS, default "full10k full1k paced"):
#   full10k: `lode-bench record` (the ledger alone, 512 submitters, shares of
#            10,000 workers over 2,000 addresses: full 256-share batches);
#   full1k:  the same with 1,000 workers over 200 addresses;
#   paced:   `lode-bench serve -redis` (the real Stratum server and ledger),
#            1,000 connections, each its own worker, one share per 2 s each.
# Processes are stopped by pid; bounded in time. From the repository root:
#   bench/load/redis-cpu-compare.sh ROUNDS NAME=LODE_BENCH [NAME=LODE_BENCH...]
# The paced load client is the last LODE_BENCH (it needs -worker-per-conn);
# every build needs the record subcommand (copy cmd/lode-bench/record.go into
# an old tree, bench/README.md).
set -euo pipefail
ROUNDS=$1
shift
BUILDS=("$@")
CLIENT=${BUILDS[-1]#*=}
REDIS_PORT=26391 SPORT=23341
USER_=mgA8ehYoXCXjpQsxBVYgspMNvVmCPPBdTj.w
# shellcheck source=bench/load/redis-lib.sh
. "$(dirname "$0")/redis-lib.sh"
# report NAME R0: redis CPU since R0 ticks and commandstats per share.
report() {
	local name=$1 r0=$2
	local r1; r1=$(cpu_ticks "$REDIS_PID")
	local acc; acc=$(redis-cli -p $REDIS_PORT hget "lodebench:{stats}:pool" accepted)
	redis-cli -p $REDIS_PORT info commandstats | tr -d '\r' >"$DIR/cs"
	awk -F'[:=,]' -v name="$name" -v t=$((r1 - r0)) -v c="$clk" -v a="${acc:-0}" '
		/^cmdstat_/ { all += $5; if ($1 == "cmdstat_evalsha") { calls = $3; usec = $5 } }
		END { if (a > 0) printf "RESULT %s: %d shares; redis-server CPU %.2f us/share; EVALSHA %.2f us/share (%.3f calls/share); all commands %.2f us/share\n",
			name, a, t/c/a*1e6, usec/a, calls/a, all/a }' "$DIR/cs"
}
paced() { # NAME BIN
	local name=$1 bin=$2
	start_redis
	local r0; r0=$(cpu_ticks "$REDIS_PID")
	"$bin" serve -listen 127.0.0.1:$SPORT -redis 127.0.0.1:$REDIS_PORT >"$DIR/srv.log" 2>&1 &
	SRV_PID=$!
	for _ in $(seq 50); do grep -q listening "$DIR/srv.log" 2>/dev/null && break; sleep 0.1; done
	"$CLIENT" -report 0 -quiet -url 127.0.0.1:$SPORT -user $USER_ -worker-per-conn -server-pid "$SRV_PID" \
		-conns 1000 -premine 20 -interval 2s -warmup 5s -duration "${PACED_SECONDS:-30}s" -version-rolling | grep -E 'accepted|CPU' || true
	kill -INT "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=
	report "$name paced 1000 workers x 0.5/s" "$r0"
	stop_redis
}
full() { # NAME BIN WORKERS ADDRESSES
	local name=$1 bin=$2 workers=$3 addresses=$4
	start_redis
	local r0; r0=$(cpu_ticks "$REDIS_PID")
	"$bin" record -redis 127.0.0.1:$REDIS_PORT -submitters 512 -workers "$workers" -addresses "$addresses" -warmup 2s -duration "${FULL_SECONDS:-15}s"
	report "$name full batches, $workers workers / $addresses addresses" "$r0"
	stop_redis
}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for round in $(seq "$ROUNDS"); do
	echo "--- round $round"
	for load in ${LOADS:-full10k full1k paced}; do
		for b in "${BUILDS[@]}"; do
			echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
			case $load in
			full10k) full "${b%%=*}" "${b#*=}" 10000 2000 ;;
			full1k) full "${b%%=*}" "${b#*=}" 1000 200 ;;
			paced) paced "${b%%=*}" "${b#*=}" ;;
			esac
		done
	done
done
echo "load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
