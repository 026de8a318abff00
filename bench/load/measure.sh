#!/usr/bin/env bash
# Runs the load measurements recorded in bench/README.md: the server
# (lode-bench serve / floor) and the load client (lode-bench) in separate
# processes on 127.0.0.1, so each stays under the 20000-descriptor limit
# at 10k connections. Everything is bounded in time; servers are stopped
# by pid. Usage, from the repository root:
#   bench/load/measure.sh [conns]      (default 10000)
set -euo pipefail
CONNS=${1:-10000}
BIN=$(mktemp -d)/lode-bench
go build -o "$BIN" ./cmd/lode-bench
USER_=mgA8ehYoXCXjpQsxBVYgspMNvVmCPPBdTj.w1 # a valid testnet3 address (lode-bench serve prints one)
SRV_PID=
REDIS_PID=
cleanup() {
	[ -n "$SRV_PID" ] && kill -INT "$SRV_PID" 2>/dev/null || true
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT

# start_server MODE PORT [flags...]: starts a server, sets SRV_PID.
start_server() {
	local mode=$1 port=$2
	shift 2
	"$BIN" "$mode" -listen "127.0.0.1:$port" "$@" >"$BIN.$mode.log" 2>&1 &
	SRV_PID=$!
	for _ in $(seq 50); do
		grep -q "listening" "$BIN.$mode.log" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "server did not start:"; cat "$BIN.$mode.log"; exit 1
}
stop_server() {
	kill -INT "$SRV_PID"; wait "$SRV_PID" || true; SRV_PID=
	grep -v listening "$BIN".*.log || true; rm -f "$BIN".*.log
}
run() { echo; echo "\$ lode-bench $*"; "$BIN" -report 0 -quiet "$@"; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load average $(cut -d' ' -f1-3 /proc/loadavg)"

echo; echo "== idle connections: server RSS, and new-block fan-out (Lode vs floor)"
start_server serve 23333
run -url 127.0.0.1:23333 -user $USER_ -conns "$CONNS" -idle -duration 12s -server-pid "$SRV_PID" -blocks 10 -block-every 1s
stop_server
start_server floor 23334
run -url 127.0.0.1:23334 -raw -conns "$CONNS" -duration 12s -server-pid "$SRV_PID" -blocks 10 -block-every 1s
stop_server

echo; echo "== share path alone (in-memory recorder), pre-mined shares, one submit in flight per connection"
for c in 1000 "$CONNS"; do
	start_server serve 23333
	run -url 127.0.0.1:23333 -user $USER_ -conns "$c" -premine $((200000 / c)) -duration 8s -version-rolling -server-pid "$SRV_PID"
	stop_server
done

echo; echo "== submit-path floor: bare JSON line server (lode-bench floor -echo), same client"
start_server floor 23335 -echo
run -url 127.0.0.1:23335 -user $USER_ -conns 1000 -premine 200 -duration 8s -version-rolling -server-pid "$SRV_PID"
stop_server

echo; echo "== paced: $CONNS connections, one share per connection per second"
start_server serve 23333
run -url 127.0.0.1:23333 -user $USER_ -conns "$CONNS" -premine 20 -interval 1s -warmup 3s -duration 10s -version-rolling -server-pid "$SRV_PID"
stop_server

if command -v redis-server >/dev/null; then
	echo; echo "== Redis share ledger on vs off (1000 connections, pre-mined)"
	redis-server --port 26390 --bind 127.0.0.1 --save "" --appendonly no >/dev/null &
	REDIS_PID=$!
	sleep 0.5
	for rflag in "-redis 127.0.0.1:26390" ""; do
		# shellcheck disable=SC2086
		start_server serve 23333 $rflag
		echo "(server flags: ${rflag:-in-memory recorder})"
		run -url 127.0.0.1:23333 -user $USER_ -conns 1000 -premine 200 -duration 8s -version-rolling -server-pid "$SRV_PID"
		stop_server
		echo "(paced 1000 connections × 5 shares/s)"
		start_server serve 23333 $rflag
		run -url 127.0.0.1:23333 -user $USER_ -conns 1000 -premine 60 -interval 200ms -duration 8s -version-rolling -server-pid "$SRV_PID"
		stop_server
	done
	kill "$REDIS_PID"; REDIS_PID=
fi
