#!/usr/bin/env bash
# Installs what `make test` and `make run` need when it is missing:
# redis-server from Debian's packages and btcd (pinned) into ./bin.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "redis-server is missing: run 'sudo apt-get install -y redis-server'" >&2
    exit 1
  fi
  echo "installing redis-server (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # The package starts a system-wide instance on :6379; Lode's tests and
  # `make run` start their own on free ports, so leave the system one alone.
fi

btcd_version=v0.24.2
if [ ! -x "$bin/btcd" ] || ! "$bin/btcd" --version 2>/dev/null | grep -q "${btcd_version#v}"; then
  echo "installing btcd $btcd_version into $bin"
  GOBIN="$bin" go install "github.com/btcsuite/btcd@$btcd_version" "github.com/btcsuite/btcd/cmd/btcctl@$btcd_version"
fi
