// Package payouts turns found blocks into miners' balances: it snapshots the
// PPLNS window when the pool finds a block, splits a matured block's reward
// by share difficulty (pure, integer arithmetic), and runs the block unlocker
// that follows each block from pending to credited or orphaned.
//
// It does not record shares (the share ledger in package shares does), talk
// to Redis (internal/redisstore implements Ledger) or to the node directly
// (blocktemplate/bitcoind satisfies Chain), and it does not send payments
// (package payouts/payment does).
//
// # Block lifecycle
//
//	pending ──in main chain──▶ immature ──Maturity confirmations──▶ credited
//	   │                          │
//	   └──hash at height differs──┴──────────────────────────────▶ orphaned
//	      (and the main chain is OrphanDepth blocks deep past it)
//
// These are the last states of the found-block state machine of package
// blocks (BlockStatus is blocks.State; blocks.Transition holds the legal
// moves). Crediting and the status change happen in one atomic Ledger call
// that checks the transition itself (against blocks.From) and refuses an
// illegal one with a *blocks.TransitionError, so a block is credited exactly once even when
// the unlocker is killed between any two steps or two unlockers race. A block
// that leaves the main chain before it is credited becomes orphaned and is
// never credited; a credited block is never un-credited (at Maturity
// confirmations a reorg is not expected, and balances may already be paid).
// Orphaned is final.
//
// # Money
//
// Amounts are integer satoshis. Share difficulty is counted in integer
// "difficulty units" (1e-8 difficulty, held in *big.Int, so sums over a
// mainnet-sized window stay exact). The units, the window size N and its
// default factor are defined once, in shares/ledger (UnitScale,
// DiffToUnits, WindowUnits, DefaultWindowFactor); the pool's spendable
// outputs are payouts/payment.UTXO.
//
// # Errors
//
// ErrBlockNotFound is returned (wrapped) when a Ledger has no record of a
// block. Split and SumWindow report invalid input with ErrInvalidSplit;
// AuditCredit reports a credited block that does not match its snapshot with
// ErrCreditMismatch.
//
// # Concurrency
//
// Unlocker.Run runs one loop in the caller's goroutine; several unlockers
// may run against one Ledger at once (they are safe, only wasteful).
package payouts
