package redisstore

// Keys of found blocks, balances and pool UTXOs (package payouts). All carry
// the {acct} hash tag: the snapshot script reads the share ledger's PPLNS
// window and round keys in the same call, and the credit script touches a
// block, the balances, the fee account and the UTXOs at once. The schema is
// documented in docs/redis.md ("Accounting keys: blocks and balances").

// blockKey is the hash holding one block's record (fields in blocks.go).
func (s *Store) blockKey(hash string) string { return s.key(acctTag, "block", hash) }

// blockSharesKey is the hash address → Σ diff units (decimal string) of the
// block's PPLNS snapshot.
func (s *Store) blockSharesKey(hash string) string { return s.key(acctTag, "block", hash, "shares") }

// blockCreditsKey is the hash address → satoshis credited from the block.
func (s *Store) blockCreditsKey(hash string) string {
	return s.key(acctTag, "block", hash, "credits")
}

// blockRoundKey keeps the round totals (address → Σ units) that the block's
// snapshot closed, blockRoundTotalKey their sum (the share ledger's roundKey
// and roundTotalKey, renamed).
func (s *Store) blockRoundKey(hash string) string { return s.key(acctTag, "block", hash, "round") }
func (s *Store) blockRoundTotalKey(hash string) string {
	return s.key(acctTag, "block", hash, "round", "total")
}

// blocksIndexKey is the sorted set of every recorded block (score height,
// member hash).
func (s *Store) blocksIndexKey() string { return s.key(acctTag, "blocks") }

// unconfirmedBlocksKey is the sorted set of pending and immature blocks
// (score height, member hash): what the unlocker scans.
func (s *Store) unconfirmedBlocksKey() string { return s.key(acctTag, "blocks", "unconfirmed") }

// BalancesKey is the hash payout address → credited, unpaid satoshis
// (integer). The payout processor debits it.
func (s *Store) BalancesKey() string { return s.key(acctTag, "balances") }

// FeeBalanceKey is the integer satoshis of pool fee credited and not yet
// paid out (kept out of BalancesKey so that hash holds only addresses).
func (s *Store) FeeBalanceKey() string { return s.key(acctTag, "fees") }

// UTXOsKey is the hash "txid:vout" → satoshis of matured coinbase outputs the
// pool may spend. The payout processor removes what it spends.
func (s *Store) UTXOsKey() string { return s.key(acctTag, "utxos") }

// blockWindowKey is the list of the block's window archive: one element per
// leaf (run of consecutive entries of one address), "first|last|address|units",
// oldest first. Written once by the snapshot script, never modified; deleted
// whole when the retention passes (docs/verify.md).
func (s *Store) blockWindowKey(hash string) string { return s.key(acctTag, "block", hash, "window") }

// blockCommitsKey is the list of the block hashes whose windows this block's
// coinbase commits, in commitment order.
func (s *Store) blockCommitsKey(hash string) string { return s.key(acctTag, "block", hash, "commits") }

// commitPendingKey is the sorted set of blocks whose window root is known and
// not yet committed on chain (score height, member hash).
func (s *Store) commitPendingKey() string { return s.key(acctTag, "commit", "pending") }

// commitDigestKey maps a commitment digest (hex) to the comma-separated
// block hashes it covers, in order, as the job builder made it: a block
// carrying that commitment is matched to its windows even when an earlier
// block already committed some of them. Expires after a week.
func (s *Store) commitDigestKey(digest string) string {
	return s.key(acctTag, "commit", "digest", digest)
}
