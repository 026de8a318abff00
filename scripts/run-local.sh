#!/usr/bin/env bash
# `make run`: a whole local pool on regtest, for trying Lode out.
#
# Starts, each on a free loopback port with its state under ./run/:
#   - redis-server (the share ledger and accounting),
#   - a regtest node, mining 101 blocks so a coinbase matures: btcd
#     (./bin/btcd), or with LODE_RUN_NODE=core Bitcoin Core (./bin/bitcoind:
#     cookie auth, ZMQ hashblock, -txindex, no wallet),
#   - lode with run/lode.yaml: lode.regtest.yaml with the chosen ports and
#     paths filled in (all roles; stratum at difficulty 0.001; on Core with
#     the cookie file and ZMQ instead of a password), secrets in files
#     beside it. lodectl reads the same file: it prints the line to paste.
#   - simulated miners (./bin/lode-bench: two connections for miner A, one
#     with version rolling for miner B),
# then prints the stratum and dashboard URLs and a ready lodectl line. Ctrl-C (or SIGTERM) stops
# everything it started, lode first so it shuts down gracefully.
#
# Environment:
#   LODE_RUN_NODE=core  run on Bitcoin Core instead of btcd (default btcd)
#   LODE_RUN_MINERS=0   start no simulated miners (connect your own)
#   LODE_RUN_FRESH=1    wipe the state directory first (chain, Redis data, spool)
#   LODE_RUN_STATE=dir  state directory (default ./run)
#   LODE_RUN_BIN=dir    where lode, lodectl, lode-bench, btcd, btcctl,
#                       bitcoind and bitcoin-cli are (default ./bin)
#
# Every regtest key below is a throwaway derived from a public string: the
# coins have no value and nothing here may be reused on a real network.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="${LODE_RUN_BIN:-$root/bin}"
run="${LODE_RUN_STATE:-$root/run}"
node_kind="${LODE_RUN_NODE:-btcd}"
case "$node_kind" in
  btcd) node_tools=("$bin/btcd" "$bin/btcctl") ;;
  core) node_tools=("$bin/bitcoind" "$bin/bitcoin-cli") ;;
  *)
    echo "run-local: LODE_RUN_NODE=$node_kind: want btcd or core" >&2
    exit 1
    ;;
esac
[ "${LODE_RUN_FRESH:-0}" = 1 ] && rm -rf "$run"
mkdir -p "$run/redis" "$run/$node_kind" "$run/lode"

for tool in redis-server "${node_tools[@]}" "$bin/lode" "$bin/lodectl" "$bin/lode-bench"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run-local: $tool is missing: run 'make run' (it installs and builds what is needed)" >&2
    exit 1
  fi
done

# Regtest keys: the pool's coinbase/payout key (sha256("lode run key")),
# the node's own mining address and two miners' payout addresses.
pool_address=mgf7FHaRYnTyaaGgcXCabtqL3tg7uQVYhX
pool_wif=cMm8MoBbHU8v7zuJakad4XW5CjK7ZfJwcJC1jcnneyGTq11WH75c
node_address=muEg6aDf6mWpRr8WGwFr6YzpX52QdjtKyP
miner_a=miRPLXFu5L6sm7j7MVcfKffYzVuYEfRerY
miner_b=n4CY32EkxDYq6zQJchn18ufm1vdbRTdVqP

pids=()
stopping=0
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  echo
  echo "run-local: stopping"
  # Newest first, each with SIGTERM (background jobs of a script ignore
  # SIGINT): miners, lode (graceful: it sends client.reconnect and
  # flushes the share queue), then the node and Redis.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "${pids[i]}" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "run-local: stopped"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

# free_port prints a loopback TCP port nothing listens on, below the
# kernel's ephemeral range so no outgoing connection holds it either.
used_ports=" "
ephemeral_low=32768
if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
  read -r ephemeral_low _ </proc/sys/net/ipv4/ip_local_port_range
fi
free_port() {
  local p
  while :; do
    p=$((10000 + RANDOM % (ephemeral_low - 10000)))
    case "$used_ports" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      used_ports="$used_ports$p "
      echo "$p"
      return
    fi
  done
}

# http_get <port> <path>: print the body of a GET on loopback, fail unless
# the status is 200 (bash only: no curl needed on a fresh machine).
http_get() {
  local reply
  reply=$(
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
    cat <&3
  ) || return 1
  case "$reply" in "HTTP/1."?" 200 "*) ;; *) return 1 ;; esac
  printf '%s\n' "${reply#*$'\r\n\r\n'}"
}

# wait_for <what> <seconds> <command...>: poll until the command succeeds.
wait_for() {
  local what=$1 limit=$2
  shift 2
  for _ in $(seq 1 $((limit * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "run-local: $what did not come up within ${limit}s; logs are in $run" >&2
  exit 1
}

redis_port=$(free_port)
rpc_port=$(free_port)
p2p_port=$(free_port)
stratum_port=$(free_port)
api_port=$(free_port)
rpc_pass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

echo "run-local: redis-server on 127.0.0.1:$redis_port"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$run/redis" --save "" \
  --appendonly yes --daemonize no --logfile "$run/redis/redis.log" &
pids+=($!)
wait_for "redis-server" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$redis_port"

if [ "$node_kind" = btcd ]; then
  echo "run-local: btcd regtest, RPC on 127.0.0.1:$rpc_port"
  touch "$run/btcd/btcd.conf"
  "$bin/btcd" --configfile="$run/btcd/btcd.conf" --regtest --notls --txindex --nobanning \
    --datadir="$run/btcd/data" --logdir="$run/btcd/logs" \
    --rpclisten="127.0.0.1:$rpc_port" --rpcuser=lode --rpcpass="$rpc_pass" \
    --listen="127.0.0.1:$p2p_port" --miningaddr="$node_address" --debuglevel=warn \
    >"$run/btcd/btcd.out" 2>&1 &
  pids+=($!)
  node_cli=("$bin/btcctl" --configfile="$run/btcd/btcd.conf" --regtest --notls --rpcserver="127.0.0.1:$rpc_port" --rpcuser=lode --rpcpass="$rpc_pass")
  mine() { "${node_cli[@]}" generate "$1"; }
else
  zmq_port=$(free_port)
  echo "run-local: Bitcoin Core regtest, RPC on 127.0.0.1:$rpc_port, ZMQ hashblock on 127.0.0.1:$zmq_port"
  # No wallet: blocks go to the node address with generatetoaddress, the
  # pool's payouts are signed by lode itself.
  "$bin/bitcoind" -regtest -server -txindex -datadir="$run/core" \
    -rpcbind=127.0.0.1 -rpcallowip=127.0.0.1 -rpcport="$rpc_port" -bind="127.0.0.1:$p2p_port" \
    -zmqpubhashblock="tcp://127.0.0.1:$zmq_port" -fallbackfee=0.0001 \
    -connect=0 -dnsseed=0 -fixedseeds=0 -listenonion=0 -discover=0 -printtoconsole=0 \
    >"$run/core/bitcoind.out" 2>&1 &
  pids+=($!)
  node_cli=("$bin/bitcoin-cli" -regtest -datadir="$run/core" -rpcport="$rpc_port")
  mine() { "${node_cli[@]}" generatetoaddress "$1" "$node_address"; }
fi
wait_for "$node_kind RPC" 30 "${node_cli[@]}" getblockcount
height=$("${node_cli[@]}" getblockcount)
if [ "$height" -lt 101 ]; then
  echo "run-local: mining $((101 - height)) blocks so a coinbase matures"
  mine $((101 - height)) >/dev/null
fi

# run/lode.yaml: lode.regtest.yaml with this run's ports and paths, the one
# file lode and lodectl both read. Secrets go in files beside it (0600),
# named by the config's {file: ...} keys, never in the config text.
admin_token="${LODE_ADMIN_TOKEN:-regtest-admin}"
(
  umask 077
  printf '%s\n' "$rpc_pass" >"$run/lode/node-password"
  printf '%s\n' "$pool_wif" >"$run/lode/payout-key"
  printf '%s\n' "$admin_token" >"$run/lode/admin-token"
)
declare -A subst=(
  [LODE_NODE_ADDR]="127.0.0.1:$rpc_port" [LODE_REDIS_ADDR]="127.0.0.1:$redis_port"
  [LODE_STRATUM]="127.0.0.1:$stratum_port" [LODE_API]="127.0.0.1:$api_port"
  [LODE_PAYOUT_ADDRESS]="$pool_address" [LODE_RUN_DIR]="$run/lode"
)
config="$run/lode.yaml"
render_config() {
  local line name
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ ! $line =~ ^[[:space:]]*# ]]; then
      for name in "${!subst[@]}"; do
        line=${line//"\${$name}"/"${subst[$name]}"}
      done
      if [[ $line == *'${'* ]]; then
        echo "run-local: lode.regtest.yaml uses a variable this script does not set: $line" >&2
        return 1
      fi
      if [ "$node_kind" = core ]; then
        # Core's cookie (rewritten on every start; lode re-reads it when
        # Core answers 401) and ZMQ instead of a user and password.
        case "$line" in
          "  rpc_user: "*)
            printf '  rpc_cookie_file: %s\n  zmq_hashblock: tcp://127.0.0.1:%s\n' "$run/core/regtest/.cookie" "$zmq_port"
            continue
            ;;
          "  rpc_password: "*) continue ;;
        esac
      fi
    fi
    printf '%s\n' "$line"
  done <"$root/lode.regtest.yaml"
}
render_config >"$config.tmp"
mv "$config.tmp" "$config"
if [ "$node_kind" = core ] && { ! grep -q '^  rpc_cookie_file:' "$config" || grep -q '^  rpc_password:' "$config"; }; then
  echo "run-local: could not derive $config from lode.regtest.yaml (node section changed?)" >&2
  exit 1
fi

echo "run-local: lode -config $config (log: $run/lode/lode.log)"
"$bin/lode" -config "$config" >>"$run/lode/lode.log" 2>&1 &
lode_pid=$!
pids+=($lode_pid)
wait_for "lode API" 30 http_get "$api_port" /healthz

if [ "${LODE_RUN_MINERS:-1}" != 0 ]; then
  echo "run-local: simulated miners (log: $run/miners.log)"
  "$bin/lode-bench" -url "stratum+tcp://127.0.0.1:$stratum_port" -user "$miner_a.rig1" -conns 2 \
    -report 0 -quiet >>"$run/miners.log" 2>&1 &
  pids+=($!)
  "$bin/lode-bench" -url "stratum+tcp://127.0.0.1:$stratum_port" -user "$miner_b.rig1" -conns 1 \
    -version-rolling -report 0 -quiet >>"$run/miners.log" 2>&1 &
  pids+=($!)
fi

# Coinbases mature after 100 blocks. The pool extends the chain itself, but
# to show credited balances and payouts within a minute the node mines 100
# blocks once, right after the pool's first block.
(
  for _ in $(seq 1 600); do
    if http_get "$api_port" "/api/v1/blocks?limit=1" | grep -q '"height"'; then
      echo "run-local: the pool found a block; the node mines 100 blocks so it matures"
      mine 100 >/dev/null
      exit 0
    fi
    sleep 1
  done
) &
pids+=($!)

# rel prints a path relative to the repository root when it is inside it,
# as the README's lines are written (run from the root); relcmd the same
# for a command (./bin/lodectl).
rel() {
  case "$1" in
    "$root"/*) printf '%s' "${1#"$root"/}" ;;
    *) printf '%s' "$1" ;;
  esac
}
relcmd() {
  case "$1" in
    "$root"/*) printf './%s' "${1#"$root"/}" ;;
    *) printf '%s' "$1" ;;
  esac
}

cat <<MSG

  Lode is running on regtest.
    stratum    stratum+tcp://127.0.0.1:$stratum_port   (user: <regtest address>.<worker>, any password)
    dashboard  http://127.0.0.1:$api_port/
    API        http://127.0.0.1:$api_port/api/v1/pool   (admin token: $admin_token)
    metrics    http://127.0.0.1:$api_port/metrics
    miners     http://127.0.0.1:$api_port/#miner=$miner_a
               http://127.0.0.1:$api_port/#miner=$miner_b
    node       ${node_cli[*]} getblockcount
    lodectl    $(relcmd "$bin/lodectl") balances -config $(rel "$config")
               (also blocks, miner <address>, payouts list, payouts run -dry-run: the README's lines)

  Every share at this difficulty is also a regtest block: blocks mature as the
  pool mines, then balances are credited and paid. Ctrl-C stops everything.

MSG

# Stay in the foreground until Ctrl-C, or until lode exits by itself. A
# trapped signal interrupts wait at once, so Ctrl-C (which also reaches lode)
# is handled by stop_all and exits 0 rather than looking like a crash.
wait "$lode_pid" || true
[ "$stopping" = 1 ] && exit 0
echo "run-local: lode exited; see $run/lode/lode.log" >&2
exit 1
