// Package payment is Lode's payout processor: it turns miners' balances
// (integer satoshis in the accounting store) into batched on-chain
// transactions that spend the pool's own UTXOs (matured coinbase outputs and
// confirmed change), without a node wallet.
//
// A run reads balances, thresholds and pool UTXOs from a Store, picks the
// addresses whose balance reaches their threshold, splits them into batches of
// at most Config.MaxOutputs outputs, selects coins (verified against the node
// with gettxout), prices the transaction with the node's fee estimate clamped
// to a floor and a cap, and either signs it (hot mode: a WIF key handed in by
// the caller) or writes an unsigned BIP174 PSBT (cold mode) for an offline
// signer.
//
// Exactly once: Store.CommitPayout debits the balances, removes the chosen
// UTXOs and writes the payout record (raw transaction, txid, amounts, fee) in
// one atomic step BEFORE anything is broadcast. Broadcasting and every later
// step only move that record forward (pending → broadcast → confirmed, or
// stuck). After a crash the record is resolved by looking its txid up on the
// node and re-broadcasting the very same raw transaction; a second
// transaction for the same debits is never built. A payout is broadcast only
// while the store holds its commit durably (CommitPayout returned nil, or
// Store.EnsureCommitted does before a later broadcast): with a replicated
// store, a failover may forget a commit no replica acknowledged, which is
// safe only as long as its transaction never left. A payout that stays
// unconfirmed longer than Config.StuckAfter is flagged StateStuck for the
// operator and is never repaid automatically; Processor.Abandon gives the
// debits back only when the node shows the transaction can never be mined.
//
// The package does not talk to Redis or the node directly: it declares the
// Store and Node interfaces it consumes; internal/redisstore and
// blocktemplate/bitcoind implement them.
//
// # Errors
//
// ErrInsufficientFunds (the pool UTXOs cannot pay a batch), ErrConflict (the
// ledger changed between planning and commit; nothing was written),
// ErrNotFound (no such payout), ErrWrongState (an operation does not apply to
// a payout in its current state) and ErrPSBTMismatch (a signed PSBT does not
// belong to the payout it claims) can be tested with errors.Is. Invalid
// addresses found in the balances are not errors: they are reported in the
// Plan's Skipped list and their balances are left untouched.
//
// # Concurrency
//
// A Processor is safe for one Run loop plus concurrent one-shot calls
// (RunOnce, BroadcastPSBT, Resolve, Abandon) from the same or other processes: all
// safety rests on the store's atomic state checks, not on in-process locks.
package payment
