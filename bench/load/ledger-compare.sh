#!/usr/bin/env bash
# Old vs new Lode with the real Redis share ledger (issue 11), alternated in
# one run (old, new, new with -stats-interval 1s): paced 1,000 connections × 0.5 shares/s (CPU per share of lode and
# of redis-server, submit→reply p50/p99), RSS per active connection at 1,000
# and 10,000 connections, and one fast pipelined connection's durable
# shares/s. Each server gets a fresh redis-server (AOF on, fsync everysec).
# Bounded in time; processes are stopped by pid. From the repository root:
#   bench/load/ledger-compare.sh OLD_LODE_BENCH NEW_LODE_BENCH [rounds]
# where each binary is `go build -o … ./cmd/lode-bench` of the commit to
# measure. The load client is always NEW_LODE_BENCH (it has -pipeline).
set -euo pipefail
OLD=$1 NEW=$2 ROUNDS=${3:-2}
CLIENT=$NEW
USER_=mgA8ehYoXCXjpQsxBVYgspMNvVmCPPBdTj.w1
REDIS_PORT=26390
# shellcheck source=bench/load/redis-lib.sh
. "$(dirname "$0")/redis-lib.sh"
start_server() { # BIN REDIS-ADDR [serve flags...]
	local bin=$1 raddr=$2
	shift 2
	"$bin" serve -listen 127.0.0.1:23340 -redis "$raddr" "$@" >"$DIR/srv.log" 2>&1 &
	SRV_PID=$!
	for _ in $(seq 50); do grep -q listening "$DIR/srv.log" 2>/dev/null && return 0; sleep 0.1; done
	echo "server did not start:"; cat "$DIR/srv.log"; exit 1
}
stop_server() { kill -INT "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=; }
# measure NAME CLIENT-FLAGS...: one run with a fresh Redis and server; prints
# the client's report and redis-server's CPU per accepted share.
measure() {
	local name=$1 bin=$2 raddr=$3 flags=$4
	shift 4
	start_redis
	# shellcheck disable=SC2086 # flags is a word list
	start_server "$bin" "$raddr" $flags
	local r0; r0=$(cpu_ticks "$REDIS_PID")
	echo "--- $name: lode-bench $*"
	"$CLIENT" -report 0 -quiet -url 127.0.0.1:23340 -user $USER_ -server-pid "$SRV_PID" "$@" | tee "$DIR/out"
	local r1; r1=$(cpu_ticks "$REDIS_PID")
	local acc; acc=$(redis-cli -p $REDIS_PORT hget "lodebench:{stats}:pool" accepted 2>/dev/null || echo 0)
	[ -z "$acc" ] && acc=0
	awk -v t=$((r1 - r0)) -v c="$clk" -v a="$acc" 'BEGIN { if (a > 0) printf "redis-server CPU: %.2f s for %d shares in Redis = %.1f us/share\n", t/c, a, t/c/a*1e6 }'
	stop_server
	grep memstats "$DIR/srv.log" | tail -n 1 || true
	stop_redis
}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Variants (name|binary|redis: tcp or unix|serve flags): old; new (defaults:
# statistics with every group commit) over TCP; new over Redis's Unix socket.
# Override with VARIANTS="name|bin|tcp|flags;..." (e.g. with -stats-interval 1s).
IFS=';' read -r -a variants <<<"${VARIANTS:-old|$OLD|tcp|-memstats 10s;new|$NEW|tcp|-memstats 10s;new-unix|$NEW|unix|-memstats 10s}"
redis_addr() { if [ "$1" = unix ]; then echo "unix://$DIR/redis.sock"; else echo 127.0.0.1:26390; fi; }
for round in $(seq "$ROUNDS"); do
	for v in "${variants[@]}"; do
		IFS='|' read -r name bin raddr flags <<<"$v"
		measure "round $round $name paced 1000x0.5/s" "$bin" "$(redis_addr "$raddr")" "$flags" -conns 1000 -premine 20 -interval 2s -warmup 5s -duration ${PACED_SECONDS:-30}s -version-rolling
	done
done
[ -n "${PACED_ONLY:-}" ] && exit 0
for v in "${variants[@]}"; do
	IFS='|' read -r name bin raddr flags <<<"$v"
	measure "$name paced 10000x0.1/s (RSS per active connection)" "$bin" "$(redis_addr "$raddr")" "$flags" -conns 10000 -premine 4 -interval 10s -warmup 5s -duration 20s -version-rolling
	measure "$name one fast connection, 256 submits in flight" "$bin" "$(redis_addr "$raddr")" "$flags" -conns 1 -pipeline 256 -warmup 2s -duration 15s -version-rolling
done
