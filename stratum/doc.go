// Package stratum is the Stratum V1 server miners connect to: listeners
// (TCP, optional TLS, several ports with their own difficulty bounds), one
// Session per connection, the methods real firmware sends (subscribe,
// authorize, configure, suggest_difficulty, extranonce.subscribe, submit),
// extranonce1 allocation, per-connection vardiff, version rolling, limits and
// bans, and the fan-out of jobs to every session.
//
// It leaves the rest to others through small interfaces declared here: a
// JobSource (the blocktemplate manager), a ShareValidator (package shares:
// per-job Work and per-connection shares.Session), a BlockSubmitter
// (submitblock) and a Recorder (the durable share ledger). Wire encoding
// lives in stratum/message.
//
// Errors: session-level rejections are sentinels here (ErrNotSubscribed,
// ErrUnauthorized, ErrBanned, ErrNotRecorded, …); share-level ones are
// package shares' *shares.RejectError. StratumCode maps any of them to its
// Stratum code in one table.
//
// Concurrency: a plain TCP connection has no goroutine of its own while it
// waits (Config.ReadLoop "epoll", the default on Linux): one event loop
// waits on every such socket in one epoll set, and a ready connection is
// served by a handler from a shared, elastic pool, which reads and handles
// its lines in order and puts it back in the set (evloop.go,
// evloop_linux.go; a sweeper applies the authorize and idle timeouts). The
// loop serves a mining connection's few lines itself when it is the only
// one ready, which saves waking a handler per paced share. A
// TLS connection, or any with ReadLoop "goroutine", has a reader goroutine
// (readLoop) that hands each line to the same pool and waits for it
// (dispatch.go), so it parks on a 2 KiB stack with no read buffer. Either
// way requests are handled in order, one at a time per session. Each
// connection has at most one writer goroutine (writeLoop) at a time,
// started when the bounded outbound queue gets data and ending when it
// drains. While the queue is empty and no writer runs, a line is instead
// written by the goroutine that sends it (broadcaster or handler) with one
// non-blocking write under Session.mu; what the socket does not take goes to
// the queue, so a slow miner still never blocks the sender (session.go
// enqueueLocked, direct_unix.go). A session whose queue exceeds MaxPending
// bytes is closed as a slow consumer; a broadcast never blocks on it.
//
// Locks: Session.mu guards the outbound queue, the difficulty and job state
// the broadcaster touches, and the shares.Session; Server.mu guards the
// session set, per-IP counts, bans and extranonce1 allocation. Server.mu is
// never taken while a Session.mu is held. Reloadable settings are an
// immutable snapshot behind an atomic pointer.
//
// Version bits from a miner that never sent mining.configure are accepted
// within the pool's mask (Config.VersionMask): several ASIC firmwares roll
// without negotiating, and the rebuilt header (job AND NOT mask) OR
// (bits AND mask) is unambiguous because job versions carry no mask bits.
package stratum
