// Package redisstore is the only importer of go-redis. It implements the
// stores that the domain packages declare (the share ledger's Store, the
// payouts ledger) on top of one redis.UniversalClient. Every key name is built
// in this package (keys_*.go files) under one configurable prefix; the key
// schema is documented in docs/redis.md.
//
// Accounting keys (PPLNS window, round totals, blocks, balances, payments,
// pool UTXOs) share the Redis Cluster hash tag {acct}, so one Lua script can
// touch them atomically. Statistics keys use other tags.
//
// Errors are prefixed "redisstore:"; redis.Nil never leaves this package.
package redisstore
