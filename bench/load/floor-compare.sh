#!/usr/bin/env bash
# What a paced request costs any server on this machine (issue 11,
# bench/README.md "Fourth round"): the same paced load (1,000 connections ×
# 0.5 shares/s) against, in turn, the echo floor in C (one epoll loop,
# bench/load/cfloor/echo.c, built with cc), the echo floor in Go with a
# goroutine per connection and with one epoll loop, Lode counting shares in
# memory and Lode with the Redis ledger (Unix socket, fresh redis-server).
# Prints each run's server CPU per accepted share, submit→reply latency and
# RSS. Bounded in time; processes are stopped by pid. From the repository root:
#   bench/load/floor-compare.sh LODE_BENCH [rounds]
# where LODE_BENCH is `go build -o … ./cmd/lode-bench`.
set -euo pipefail
BIN=$1 ROUNDS=${2:-3}
USER_=mgA8ehYoXCXjpQsxBVYgspMNvVmCPPBdTj.w1
REDIS_PORT=26391
# shellcheck source=bench/load/redis-lib.sh
. "$(dirname "$0")/redis-lib.sh"
run() { # NAME lode-bench-subcommand-and-flags... (or: NAME cecho)
	local name=$1
	shift
	if [ "$1" = cecho ]; then
		"$DIR/cecho" 23348 "$DIR/notify.line" 1e-08 >"$DIR/srv.log" 2>&1 &
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
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
cc -O2 -o "$DIR/cecho" "$(dirname "$0")/cfloor/echo.c"
"$BIN" floor -write-notify "$DIR/notify.line"
for round in $(seq "$ROUNDS"); do
	run "round $round: echo floor in C, one epoll loop" cecho
	run "round $round: echo floor, goroutine per connection" floor -echo
	run "round $round: echo floor, one epoll loop" floor -echo -epoll
	run "round $round: lode, shares in memory" serve
	start_redis
	r0=$(cpu_ticks "$REDIS_PID")
	run "round $round: lode, Redis ledger (unix socket)" serve -redis "unix://$DIR/redis.sock"
	r1=$(cpu_ticks "$REDIS_PID")
	awk -v t=$((r1 - r0)) -v c="$clk" 'BEGIN { printf "redis-server CPU: %.2f s\n", t/c }'
	stop_redis
done
