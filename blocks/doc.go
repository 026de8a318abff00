// Package blocks owns the life of a found block, keyed by its hash, from the
// share that solved it to its record: journaled (fsync) → submitted to every
// node → accepted → recorded (its PPLNS window snapshotted up to the
// finding share, archived, its Merkle-sum root stored, the windows its
// coinbase commits marked). From there the record's status in the store
// holds the same state machine's state, moved by payouts.Unlocker (pending
// → immature → credited or orphaned), each move checked by Transition; a
// later block of the pool commits its window root on chain.
//
// One state machine (State, Transition). Up to the record it is made
// crash-safe by one journal file: every transition is a line written and
// fsynced before it is acted on, and folded by hash when the journal is
// read, so a restart resumes each block where it was; after the record, by
// the store's atomic moves, each checked against the record's state. The journal keeps a block until its record is taken, with
// the worker and the ledger sequence ("instance:counter") of its finding
// share, so a block recorded after a crash or a store outage still gets the
// window that ends exactly at its share.
//
// A Submitter journals and submits blocks (used alone by tests and tools
// that do not record). A Tracker drives it: the stratum server calls
// Tracker.Submit on a goroutine of its own beside the recording of the
// share, the share ledger's answer reaches Tracker.ShareDone, and the record
// is taken once a node has the block and its share is durable; Tracker.Run
// resubmits what no node confirmed and retries failed records with backoff.
//
// It does not validate shares (package shares), record them (shares/ledger)
// or compute windows and splits (payouts); it imports neither payouts nor
// go-redis: the record goes through the Recorder interface
// (payouts.Recorder over internal/redisstore), and payouts imports blocks
// for the state machine and FoundBlock.
//
// # Errors
//
// A refused move of the state machine is a *TransitionError; every one
// matches ErrIllegalTransition with errors.Is.
//
// # Concurrency
//
// Submitter and Tracker are safe for concurrent use. Tracker.Run must run as
// one goroutine per Tracker; Submit and ShareDone may be called from any
// goroutine (ShareDone returns at once: it runs on the ledger's flusher).
package blocks
