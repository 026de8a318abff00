// Package miner is a Stratum V1 test miner that behaves like cpuminer: it
// subscribes, authorizes, optionally negotiates BIP310 version rolling and
// suggests a difficulty, follows mining.notify and mining.set_difficulty,
// mines real shares on the CPU (double SHA-256 of 80-byte headers) and
// submits them, counting accepted and rejected shares and the latency of
// each submit. It is used by the stratum tests and by the load generator.
//
// Concurrency: a Miner runs one reader goroutine (readLoop) that owns the
// socket's read side and dispatches replies and notifications; writes are
// serialized by a mutex. Run mines on the caller's goroutine.
package miner
