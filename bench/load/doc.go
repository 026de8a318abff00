// Package load is a Stratum V1 load generator: it opens many connections to
// a pool, has each one mine real shares at the pool's (low) difficulty and
// submit them, and measures accepted shares per second, submit→response
// latency percentiles and new-block fan-out time (the spread, or the time
// from a known block event, until the last connection received the clean
// job). It speaks only the wire protocol, so it works against any Stratum V1
// pool; it also holds the pieces the benchmarks compare against: a bare
// "floor" broadcaster (the same line written to the same sockets with no
// pool logic), an in-process Lode server fed by a recorded template with a
// realistic network target, and /proc readers for a server's RSS and CPU.
//
// Unlike bench/miner (one JSON decode per line, a 64 KiB buffer and every
// latency kept per connection), a connection here keeps a small read buffer,
// parses the common reply on a fast path and records latencies in one shared
// log-linear histogram, so tens of thousands of connections fit in one
// client process without the client dominating the measurement.
package load
