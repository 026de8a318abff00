package redisstore

import "strconv"

// Keys of the payout processor (package payouts/payment). They carry the
// {acct} hash tag like the balances, fee account and UTXO keys
// (keys_blocks.go) because one script debits balances, reserves UTXOs and
// writes the payout record at once. Documented in docs/redis.md
// ("Payments").

// payoutKey is the hash holding one payout: "state" (checked by the scripts)
// and "data" (the JSON record, payment.Payout).
func (s *Store) payoutKey(id int64) string {
	return s.key(acctTag, "payout", strconv.FormatInt(id, 10))
}

// payoutsIndexKey is the sorted set of every payout id (score = id).
func (s *Store) payoutsIndexKey() string { return s.key(acctTag, "payouts") }

// openPayoutsKey is the sorted set of payouts not yet confirmed (score = id):
// what the processor resolves on every run and after a restart.
func (s *Store) openPayoutsKey() string { return s.key(acctTag, "payouts", "open") }

// payoutSeqKey is the counter that allocates payout ids.
func (s *Store) payoutSeqKey() string { return s.key(acctTag, "payouts", "seq") }

// payoutTotalsKey is the hash of running totals: "paid" (satoshis sent to
// recipients), "fees" (network fees), "payouts" (count).
func (s *Store) payoutTotalsKey() string { return s.key(acctTag, "payouts", "totals") }

// payoutThresholdsKey is the hash address → per-address payout threshold in
// satoshis (overrides of the configured default).
func (s *Store) payoutThresholdsKey() string { return s.key(acctTag, "payouts", "thresholds") }
