#!/usr/bin/env bash
# Installs what `make test` and `make run` need when it is missing:
# redis-server from Debian's packages and btcd (pinned) into ./bin; with
# --browser also Debian's chromium, which the dashboard's browser test drives.
set -euo pipefail
browser=0
[ "${1:-}" = "--browser" ] && browser=1
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"


apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$1 is missing: run 'sudo apt-get install -y $1'" >&2
    exit 1
  fi
  echo "installing $1 (Debian package)"
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
}

if [ "$browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

if ! command -v redis-server >/dev/null 2>&1; then
  # Lode's tests and `make run` start their own redis-server on free ports.
  apt_install redis-server
fi

btcd_version=v0.24.2
if [ ! -x "$bin/btcd" ] || ! "$bin/btcd" --version 2>/dev/null | grep -q "${btcd_version#v}"; then
  echo "installing btcd $btcd_version into $bin"
  GOBIN="$bin" go install "github.com/btcsuite/btcd@$btcd_version" "github.com/btcsuite/btcd/cmd/btcctl@$btcd_version"
fi
