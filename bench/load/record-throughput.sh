#!/usr/bin/env bash
# Shares/s one redis-server records (AOF on, fsync everysec) when the Go side
# is not the limit: PROCS separate `lode-bench record` processes (the share
# ledger alone, each its own instance, SUBMITTERS goroutines calling Record)
# against one fresh redis-server, at the same time (issue 14). Reports each
# process's acknowledged shares/s, their sum, redis-server's CPU over the
# measured window, and checks that Redis holds every share the processes
# recorded (the round total = shares × units). With WORKER_BASE=n, process i
# numbers its workers from (i-1)·n, so each has workers of its own (as
# frontends whose miners each connect to one) instead of all sharing the same
# -workers (n a multiple of -addresses keeps the addresses shared). From the
# repository root:
#   bench/load/record-throughput.sh LODE_BENCH [procs] [extra record flags...]
set -euo pipefail
BIN=$1 PROCS=${2:-3}
shift 2 || true
REDIS_PORT=26392
# shellcheck source=bench/load/redis-lib.sh
. "$(dirname "$0")/redis-lib.sh"
WARMUP=${WARMUP:-3} SECONDS_=${DURATION:-15}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ); $PROCS processes $*"
start_redis
pids=()
for i in $(seq "$PROCS"); do
	"$BIN" record -redis 127.0.0.1:$REDIS_PORT -instance "rec$i" -warmup "${WARMUP}s" -duration "${SECONDS_}s" \
		${WORKER_BASE:+-worker-base $(((i - 1) * WORKER_BASE))} "$@" >"$DIR/rec$i.log" 2>&1 &
	pids+=($!)
done
sleep "$WARMUP"
r0=$(cpu_ticks "$REDIS_PID")
sleep "$SECONDS_"
r1=$(cpu_ticks "$REDIS_PID")
for p in "${pids[@]}"; do wait "$p"; done
cat "$DIR"/rec*.log
awk '/acknowledged/ { for (i = 1; i <= NF; i++) if ($i == "shares/s") s += $(i-1); for (i = 1; i <= NF; i++) if ($i == "recorded") n += $(i-1) }
	END { printf "TOTAL %.0f shares/s acknowledged by %d processes; %d shares recorded in all\n", s, NR, n }' "$DIR"/rec*.log
echo "redis-server CPU over the measured ${SECONDS_} s: $(awk -v t=$((r1 - r0)) -v c="$(getconf CLK_TCK)" -v s="$SECONDS_" 'BEGIN { printf "%.2f s (%.0f %% of a core)", t/c, t/c/s*100 }')"
redis-cli -p $REDIS_PORT get "lodebench:{acct}:round:total" | awk '{ printf "Σ round units in Redis: %s (= %.0f shares of difficulty 1024)\n", $1, $1 / 102400000000 }'
stop_redis
