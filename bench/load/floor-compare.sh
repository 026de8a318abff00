#!/usr/bin/env bash
# What a paced request costs any server on this machine (issue 11,
# bench/README.md "Fourth round"): the same paced load (1,000 connections ×
# 0.5 shares/s) against, in turn, the echo floor in C (one epoll loop,
# bench/load/cfloor/echo.c, built with cc), the same in C answering each
# submit only after an RPUSH of it to Redis has returned (cfloor/durable.c,
# Unix socket, fresh redis-server), the echo floor in Go with a goroutine per
# connection and with one epoll loop, Lode counting shares in memory and Lode
# with the Redis ledger (Unix socket, fresh redis-server). Prints each run's
# server CPU per accepted share, submit→reply latency and RSS, and for the
# Redis runs redis-server's CPU per share in Redis. Bounded in time;
# processes are stopped by pid. From the repository root:
#   bench/load/floor-compare.sh LODE_BENCH [rounds]
# where LODE_BENCH is `go build -o … ./cmd/lode-bench`.
set -euo pipefail
BIN=$1 ROUNDS=${2:-3}
USER_=mgA8ehYoXCXjpQsxBVYgspMNvVmCPPBdTj.w1
REDIS_PORT=26391
# shellcheck source=bench/load/redis-lib.sh
. "$(dirname "$0")/redis-lib.sh"
run() { # NAME lode-bench-subcommand-and-flags... (or: NAME cecho, NAME cdurable)
	local name=$1
	shift
	if [ "$1" = cecho ]; then
		"$DIR/cecho" 23348 "$DIR/notify.line" 1e-08 >"$DIR/srv.log" 2>&1 &
	elif [ "$1" = cdurable ]; then
		"$DIR/cdurable" 23348 "$DIR/notify.line" 1e-08 "$DIR/redis.sock" >"$DIR/srv.log" 2>&1 &
	else
		"$BIN" "$@" -listen 127.0.0.1:23348 >"$DIR/srv.log" 2>&1 &
	fi
	SRV_PID=$!
	for _ in $(seq 50); do grep -q listening "$DIR/srv.log" 2>/dev/null && break; sleep 0.1; done
	sleep 0.5
	echo "--- $name"
	"$BIN" -report 0 -quiet -url 127.0.0.1:23348 -user $USER_ -server-pid "$SRV_PID" -conns 1000 -premine 20 \
		-interval 2s -warmup 5s -duration "${SECONDS_PER_RUN:-20}s" -version-rolling | grep -E "accepted|server CPU"
	kill -INT "$SRV_PID"
	wait "$SRV_PID" 2>/dev/null || true
	SRV_PID=
}
# redis_cpu T0 T1 SHARES: redis-server's CPU between two cpu_ticks readings,
# in all and per share in Redis (premined and warm-up shares included).
redis_cpu() {
	awk -v t=$(($2 - $1)) -v c="$clk" -v a="${3:-0}" 'BEGIN { printf "redis-server CPU: %.2f s", t/c
		if (a > 0) printf " for %d shares in Redis = %.1f µs/share", a, t/c/a*1e6
		printf "\n" }'
}
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
cc -O2 -o "$DIR/cecho" "$(dirname "$0")/cfloor/echo.c"
cc -O2 -o "$DIR/cdurable" "$(dirname "$0")/cfloor/durable.c"
"$BIN" floor -write-notify "$DIR/notify.line"
for round in $(seq "$ROUNDS"); do
	run "round $round: echo floor in C, one epoll loop" cecho
	start_redis
	r0=$(cpu_ticks "$REDIS_PID")
	run "round $round: durable floor in C, Redis unix socket" cdurable
	r1=$(cpu_ticks "$REDIS_PID")
	grep -h acknowledged "$DIR/srv.log" || true
	redis_cpu "$r0" "$r1" "$(redis-cli -s "$DIR/redis.sock" llen cfloor:shares)"
	stop_redis
	run "round $round: echo floor, goroutine per connection" floor -echo
	run "round $round: echo floor, one epoll loop" floor -echo -epoll
	run "round $round: lode, shares in memory" serve
	start_redis
	r0=$(cpu_ticks "$REDIS_PID")
	run "round $round: lode, Redis ledger (unix socket)" serve -redis "unix://$DIR/redis.sock"
	r1=$(cpu_ticks "$REDIS_PID")
	redis_cpu "$r0" "$r1" "$(redis-cli -s "$DIR/redis.sock" hget "lodebench:{stats}:pool" accepted)"
	stop_redis
done
