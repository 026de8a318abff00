// Package ledger is the domain side of share recording: the group-commit
// queue that turns accepted shares from every connection into batches, the
// local spool that keeps acknowledged shares while Redis is unreachable, and
// the Store interface an adapter (internal/redisstore) implements.
//
// A Recorder answers Record only once the batch holding the share is durable:
// applied by the Store, or — when the Store fails — appended and fsynced to
// the spool. When the Store answers again the spool is replayed in order and
// removed. Every share and every batch carries a sequence number that is
// unique per instance (see Config.Instance) and increases across restarts;
// the Store applies a batch only if its sequence number is above the
// instance's applied high-water mark, checked inside the same atomic write,
// so a replay (after a lost reply, a crash between replay and removal, or a
// second replay) is counted once.
//
// Difficulties are credited in diff units: the share's target difficulty
// rounded to 8 decimals and written as a base-10 integer string (difficulty
// × 10^8). Sums over a mainnet round exceed 2^64, so parse them with
// math/big (ParseUnits). units.go is the pool's one definition of this
// money arithmetic: the units (UnitScale, DiffUnits, DiffToUnits,
// UnitsToDifficulty) and the PPLNS window size N (WindowDifficulty,
// WindowUnits, DefaultWindowFactor), which payouts, the API and the
// configuration use rather than restate.
//
// Errors: Record returns ErrClosed after Run ended, ErrInvalidShare for a
// share that cannot be recorded (bad difficulty or address), and an error
// wrapping ErrNotDurable when neither the Store nor the spool took the share.
//
// Concurrency: Record and RecordReject are safe for concurrent use. Run must
// be called once; it is the single flusher goroutine that owns the spool and
// the live Store writes. Spool replay attempts (a short probe, then the
// batches in order) run on a goroutine of their own, one at a time, so that
// while Redis is down new batches are spooled and acknowledged without
// waiting for an attempt to time out.
package ledger
