# Shared by the bench/load/*-compare.sh scripts (source it): a fresh
# redis-server per run (AOF on, fsync everysec) on REDIS_PORT with its Unix
# socket in DIR, process CPU from /proc, and cleanup of the processes it and
# the script started (by pid) on exit. Set REDIS_PORT before sourcing.
DIR=$(mktemp -d)
SRV_PID= REDIS_PID=
cleanup() {
	[ -n "$SRV_PID" ] && kill -INT "$SRV_PID" 2>/dev/null || true
	[ -n "$REDIS_PID" ] && kill "$REDIS_PID" 2>/dev/null || true
}
trap cleanup EXIT
clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
start_redis() {
	rm -rf "$DIR/redis" && mkdir -p "$DIR/redis"
	redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
		--unixsocket "$DIR/redis.sock" --unixsocketperm 700 \
		--dir "$DIR/redis" --logfile "$DIR/redis/log" &
	REDIS_PID=$!
	for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
	echo "redis did not start"; exit 1
}
stop_redis() { kill "$REDIS_PID"; wait "$REDIS_PID" 2>/dev/null || true; REDIS_PID=; }
