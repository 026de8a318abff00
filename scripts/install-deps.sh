#!/usr/bin/env bash
# Installs what `make test` and `make run` need when it is missing:
# redis-server and redis-sentinel from Debian's packages, btcd (pinned) and Bitcoin Core v30.0
# (bitcoind, bitcoin-cli) into ./bin; with --browser also Debian's chromium,
# which the dashboard's browser test drives.
set -euo pipefail
browser=0
[ "${1:-}" = "--browser" ] && browser=1
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/bin"
mkdir -p "$bin"


apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$* missing: run 'sudo apt-get install -y $*'" >&2
    exit 1
  fi
  echo "installing $* (Debian packages)"
  if [ -z "${apt_updated:-}" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if [ "$browser" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  apt_install chromium
fi

if ! command -v redis-server >/dev/null 2>&1; then
  # Lode's tests and `make run` start their own redis-server on free ports.
  apt_install redis-server
fi
if ! command -v redis-sentinel >/dev/null 2>&1; then
  # The Sentinel failover tests start three Sentinels (internal/testenv).
  apt_install redis-sentinel
fi

btcd_version=v0.24.2
if [ ! -x "$bin/btcd" ] || ! "$bin/btcd" --version 2>/dev/null | grep -q "${btcd_version#v}"; then
  echo "installing btcd $btcd_version into $bin"
  GOBIN="$bin" go install "github.com/btcsuite/btcd@$btcd_version" "github.com/btcsuite/btcd/cmd/btcctl@$btcd_version"
fi

# Bitcoin Core v30.0. The tests run every node-facing path against it as well
# as btcd. On the project's machines a build of v30.0 (no wallet, ZMQ) sits
# in ../shared/bin beside the repository, with its checksums in its README;
# elsewhere the official release is downloaded and checked.
core_version=30.0
core_installed() {
  [ -x "$bin/bitcoind" ] && [ -x "$bin/bitcoin-cli" ] &&
    "$bin/bitcoind" -version 2>/dev/null | head -n 1 | grep -q "v$core_version\b"
}
# sha256_ok <file> <hex>: the file's SHA-256 is hex.
sha256_ok() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# The project's machines keep those builds in ../shared/bin beside the
# repository; LODE_SHARED_BIN names another folder, and a clone made elsewhere
# on such a machine (a CI checkout in a temporary folder) finds the machine's
# copy at /work/shared/bin.
shared="${LODE_SHARED_BIN:-$root/../shared/bin}"
if [ ! -d "$shared" ] && [ -d /work/shared/bin ]; then
  shared=/work/shared/bin
fi
if [ -x "$shared/bitcoind" ] && [ -x "$shared/bitcoin-cli" ]; then
  # The local build links Debian's ZMQ and libevent.
  missing_libs=()
  for pkg in libzmq5 libevent-2.1-7 libevent-extra-2.1-7 libevent-pthreads-2.1-7; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing_libs+=("$pkg")
  done
  if [ "${#missing_libs[@]}" -gt 0 ]; then
    apt_install "${missing_libs[@]}"
  fi
fi
if ! core_installed; then
  if [ -x "$shared/bitcoind" ] && [ -x "$shared/bitcoin-cli" ]; then
    echo "installing Bitcoin Core v$core_version from $shared into $bin"
    for tool in bitcoind bitcoin-cli; do
      # The expected sum is the one $shared/README.md publishes for the file.
      want=$(awk -v f="$tool" '$2 == f && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print $1 }' "$shared/README.md")
      if [ -z "$want" ] || ! sha256_ok "$shared/$tool" "$want"; then
        echo "install-deps: $shared/$tool does not match the sha256 in $shared/README.md" >&2
        exit 1
      fi
      install -m 0755 "$shared/$tool" "$bin/$tool.tmp"
      mv "$bin/$tool.tmp" "$bin/$tool"
    done
  else
    tarball="bitcoin-$core_version-x86_64-linux-gnu.tar.gz"
    url="https://bitcoincore.org/bin/bitcoin-core-$core_version"
    # The expected SHA-256 of $tarball is its line in the release's
    # SHA256SUMS ($url/SHA256SUMS, signed by the release builders in
    # SHA256SUMS.asc: check that signature once, e.g. with
    # contrib/verify-binaries of bitcoin/bitcoin, then pin the hash here so a
    # compromised download server cannot substitute both files). Not pinned
    # yet: it was written on a machine without network access, where the
    # published SHA256SUMS could not be read; until then the tarball is
    # checked against the SHA256SUMS downloaded with it.
    core_tarball_sha256=""
    if [ "$(uname -m)" != x86_64 ] || [ "$(uname -s)" != Linux ]; then
      echo "install-deps: no Bitcoin Core release for $(uname -s)/$(uname -m) here; install bitcoind v$core_version into $bin" >&2
      exit 1
    fi
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    echo "downloading Bitcoin Core v$core_version ($url/$tarball)"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    curl -fsSL --retry 3 -o "$tmp/$tarball" "$url/$tarball"
    curl -fsSL --retry 3 -o "$tmp/SHA256SUMS" "$url/SHA256SUMS"
    published=$(awk -v f="$tarball" '$2 == f { print $1 }' "$tmp/SHA256SUMS")
    if [ -z "$published" ] || ! sha256_ok "$tmp/$tarball" "$published"; then
      echo "install-deps: $tarball does not match the release's SHA256SUMS" >&2
      exit 1
    fi
    if [ -n "$core_tarball_sha256" ] && [ "$published" != "$core_tarball_sha256" ]; then
      echo "install-deps: the release's SHA256SUMS names $published for $tarball, pinned is $core_tarball_sha256" >&2
      exit 1
    fi
    tar -xzf "$tmp/$tarball" -C "$tmp" "bitcoin-$core_version/bin/bitcoind" "bitcoin-$core_version/bin/bitcoin-cli"
    for tool in bitcoind bitcoin-cli; do
      install -m 0755 "$tmp/bitcoin-$core_version/bin/$tool" "$bin/$tool.tmp"
      mv "$bin/$tool.tmp" "$bin/$tool"
    done
  fi
  core_installed || { echo "install-deps: $bin/bitcoind is not v$core_version" >&2; exit 1; }
fi

# cpuminer 2.5.1 (minerd), a real Stratum V1 client nobody here wrote: the
# stratum tests run it against the pool. On the project's machines a build
# sits in ../shared/bin with its checksum in the README; elsewhere it is built
# from its public source (pooler/cpuminer, tag v2.5.1) with Debian's
# toolchain and libraries.
minerd_version=2.5.1
minerd_installed() { [ -x "$bin/minerd" ] && "$bin/minerd" --version 2>&1 | head -n 1 | grep -q "cpuminer $minerd_version"; }
minerd_libs=(libcurl4 libjansson4)
if ! minerd_installed; then
  missing_libs=()
  for pkg in "${minerd_libs[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing_libs+=("$pkg")
  done
  if [ "${#missing_libs[@]}" -gt 0 ]; then
    apt_install "${missing_libs[@]}"
  fi
  if [ -x "$shared/minerd" ]; then
    echo "installing cpuminer $minerd_version from $shared into $bin"
    want=$(awk '$2 == "minerd" && length($1) == 64 && $1 ~ /^[0-9a-f]+$/ { print $1 }' "$shared/README.md")
    if [ -z "$want" ] || ! sha256_ok "$shared/minerd" "$want"; then
      echo "install-deps: $shared/minerd does not match the sha256 in $shared/README.md" >&2
      exit 1
    fi
    install -m 0755 "$shared/minerd" "$bin/minerd.tmp"
    mv "$bin/minerd.tmp" "$bin/minerd"
  else
    apt_install git autoconf automake make gcc libcurl4-openssl-dev libjansson-dev
    src=$(mktemp -d)
    echo "building cpuminer $minerd_version from source in $src"
    git clone -q --depth 1 --branch "v$minerd_version" https://github.com/pooler/cpuminer "$src/cpuminer"
    (cd "$src/cpuminer" && ./autogen.sh >/dev/null && ./configure -q CFLAGS="-O2" >/dev/null && make -s >/dev/null)
    install -m 0755 "$src/cpuminer/minerd" "$bin/minerd"
    rm -rf "$src"
  fi
  minerd_installed || { echo "install-deps: $bin/minerd is not cpuminer $minerd_version" >&2; exit 1; }
fi
