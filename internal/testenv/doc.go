// Package testenv starts throwaway servers for tests: a real redis-server
// (also as a Redis Cluster or a Sentinel-managed primary with replicas, with
// helpers to SIGKILL the primary and wait for a promotion), a real btcd regtest node and a real Bitcoin Core regtest node (bitcoind),
// each on free loopback ports in a temporary directory, stopped when the
// test ends. Node is what both nodes offer, so node-facing tests are written
// once and run over NodeKinds (ForEachNode).
//
// Binaries are looked up in the repository's bin/ folder (where `make deps`
// installs btcd and bitcoind), then in PATH. A missing binary fails the test with a message
// naming the fix; it never skips.
package testenv
