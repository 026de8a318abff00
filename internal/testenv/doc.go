// Package testenv starts throwaway servers for tests: a real redis-server and
// a real btcd regtest node, each on free loopback ports in a temporary
// directory, stopped when the test ends.
//
// Binaries are looked up in the repository's bin/ folder (where `make test`
// installs btcd), then in PATH. A missing binary fails the test with a message
// naming the fix; it never skips.
package testenv
