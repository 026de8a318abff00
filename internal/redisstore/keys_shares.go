package redisstore

import "strconv"

// Keys of the share ledger (owner: shares/ledger through this file). The
// schema is documented in docs/redis.md; keep the two in step.
//
// Accounting keys carry the {acct} hash tag (the block-found snapshot of
// payouts reads them in the same script); statistics keys carry {stats}, so
// one script can update every statistic of a batch.

const statsTag = "{stats}"

// windowKey is the PPLNS window: a list of "seq|address|units", newest first.
func (s *Store) windowKey() string { return s.key(acctTag, "window") }

// windowTotalKey is Σ units of the window (decimal string).
func (s *Store) windowTotalKey() string { return s.key(acctTag, "window", "total") }

// windowLimitKey is the window size N (units) the window was last trimmed to.
func (s *Store) windowLimitKey() string { return s.key(acctTag, "window", "limit") }

// roundKey is a hash: payout address → Σ units since the last block.
func (s *Store) roundKey() string { return s.key(acctTag, "round") }

// roundTotalKey is Σ units of the round over all addresses.
func (s *Store) roundTotalKey() string { return s.key(acctTag, "round", "total") }

// acctAppliedKey is the highest batch sequence applied to the accounting
// keys for one recorder instance.
func (s *Store) acctAppliedKey(instance string) string {
	return s.key(acctTag, "applied", instance)
}

// statsAppliedKey is the same high-water mark for the statistics keys.
func (s *Store) statsAppliedKey(instance string) string {
	return s.key(statsTag, "applied", instance)
}

// poolStatsKey is a hash of pool-wide counters (never expires).
func (s *Store) poolStatsKey() string { return s.key(statsTag, "pool") }

// hashrateKey is the hashrate bucket of one unix minute: a hash of
// Σ difficulty per "w:<worker>", "m:<address>" and "pool", kept two hours
// (for the 10-minute and 1-hour hashrates).
func (s *Store) hashrateKey(minute int64) string {
	return s.key(statsTag, "hr", strconv.FormatInt(minute, 10))
}

// hashrateSlotKey is the same for one 10-minute slot (unix seconds / 600),
// kept 25 hours (for the 24-hour hashrate): a worker costs 144 fields a day
// here instead of 1440 minute fields.
func (s *Store) hashrateSlotKey(slot int64) string {
	return s.key(statsTag, "hr10", strconv.FormatInt(slot, 10))
}

// workerKey is a hash of one worker's counters (full username).
func (s *Store) workerKey(worker string) string { return s.key(statsTag, "worker", worker) }

// minerKey is a hash: worker name ("" for the bare address) → last share
// time (unix ms) of one payout address.
func (s *Store) minerKey(address string) string { return s.key(statsTag, "miner", address) }

// recentKey is a capped list of the latest shares of one address, newest
// first: "unixms|worker name|difficulty|hash difficulty".
func (s *Store) recentKey(address string) string { return s.key(statsTag, "recent", address) }
