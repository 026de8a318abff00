// Package blocktemplate turns a node's getblocktemplate answer into Stratum
// work: it parses and checks the template (ParseTemplate), builds the
// coinbase (BIP34 height, coinbaseaux, extranonce slot, pool tag, payout
// output, witness commitment) and the merkle branch once per template
// (Builder.Job), and publishes immutable Jobs (Manager). A Job can be
// encoded as mining.notify params (Job.Notify), rebuilt from them
// (JobFromNotify, for lodectl share-check) and, with its template, turned
// into the full block for submitblock (Job.Block). Target and difficulty
// conversions (CompactToTarget, TargetToDifficulty, DifficultyToTarget) use
// big-number arithmetic so fractional difficulties are exact.
//
// It does not talk to sockets or Redis. Node access lives in the
// blocktemplate/bitcoind adapter, which implements TemplateSource; share
// validation lives in package shares.
//
// # Byte order
//
// Hashes in Template and Job are in internal order (raw SHA256d output), as
// in headers. RPC display order is converted at the parser; Stratum's
// word-swapped prevhash at Notify/JobFromNotify.
//
// # Errors
//
// ParseTemplate wraps ErrBadTemplate around every rejection, with a message
// naming the field. Job.Block wraps ErrNoTemplate for a job rebuilt from a
// notify. Configuration errors (bad payout address, a scriptSig that could
// exceed 100 bytes) are returned by NewBuilder.
//
// # Concurrency
//
// Jobs are immutable once published; share validation reads them from many
// goroutines. Manager.Run owns the current template: one update goroutine
// fetches templates and publishes jobs, fed by a poll loop
// (getbestblockhash), an optional long-poll loop and an optional ZMQ
// hashblock loop. Lookup and Current read an atomic snapshot and take no
// lock. Each Subscribe call starts one forwarder goroutine that lives until
// its ctx is done; the Manager never blocks on a subscriber. The Manager's
// only mutex (subscriber set) is never held across I/O.
package blocktemplate
