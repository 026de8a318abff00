// Package economics turns what the pool already knows — the node's template
// (subsidy, fees, difficulty), the chain (past fees, block times, retarget
// progress) and every worker's shares — into money: hashprice, network
// hashrate, a retarget forecast, per-worker hashrate with a 95 % confidence
// interval, device models with their efficiency, revenue, power cost,
// margin, break-even power price and efficiency, and run/curtail/hold advice
// that fleet tools can receive by webhook.
//
// It is read-only and never on the share path: it reads the template, the
// chain and the share statistics through interfaces it declares (Templates,
// Chain, Stats) and computes figures on its own schedule (Engine.Run). It
// never commands a miner. The formulas, with units, are in
// docs/economics.md; the names of the functions here follow it.
//
// Money that is counted (subsidy, fees of a block) is integer satoshis
// (btcutil.Amount); money that is estimated (revenue per day, hashprice,
// margin) is float64 satoshis, because it is a rate with an uncertainty,
// never credited to anyone.
//
// # Errors
//
// Config.Validate returns a *ConfigError naming the key of the bad value.
// Chain and feed failures are returned wrapped; a figure that cannot be
// computed (no template yet, fewer than 10 blocks into an epoch, no BTC
// price) is reported as absent (nil pointer or Available false) with a
// reason, never as a zero.
//
// # Concurrency
//
// Engine.Run owns the refresh loop (refreshLoop) and the price feeds'
// pollers (pollLoop) and, when one is given, the Notifier's delivery loop
// (Notifier.Run: one goroutine, events in order).
// Snapshot, Handler and Notifier.Notify are safe for concurrent use; a
// snapshot, once published, is never mutated.
package economics
