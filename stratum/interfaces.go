package stratum

import (
	"context"
	"time"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/shares"
)

// JobSource is the job manager as the server sees it: the newest job, for a
// miner that has just authorized. New jobs reach the server through
// Server.Publish. Jobs are immutable.
type JobSource interface {
	// Current returns the newest job, nil before the first template.
	Current() *blocktemplate.Job
}

// ShareValidator precomputes per-job work once and creates the per-connection
// validation state (package shares). *shares.Validator implements it.
type ShareValidator interface {
	NewWork(job *blocktemplate.Job) (*shares.Work, error)
	NewSession(extranonce1 []byte, versionMask uint32) (*shares.Session, error)
}

var _ ShareValidator = (*shares.Validator)(nil)

var _ JobSource = (*blocktemplate.Manager)(nil)

// BlockSubmitter hands a block candidate to the node(s). It is called on a
// goroutine of its own, beside the recording of the share, so the miner's
// reply never waits for a node; an error or an unconfirmed report is logged
// and counted, the share still counts (it met the share target). It should
// journal the block durably first and keep retrying a node that does not
// answer on its own schedule. *blocks.Tracker (the daemon's) and
// *blocks.Submitter implement it.
type BlockSubmitter interface {
	Submit(ctx context.Context, c shares.Candidate) (blocks.Report, error)
}

var (
	_ BlockSubmitter = (*blocks.Tracker)(nil)
	_ BlockSubmitter = (*blocks.Submitter)(nil)
)

// BlockNotifier is told when the pool's own block was confirmed by a node,
// so the next job does not wait for the node's notice.
// *blocktemplate.Manager implements it.
type BlockNotifier interface {
	NewBlockFound(ctx context.Context) error
}

var _ BlockNotifier = (*blocktemplate.Manager)(nil)

// Recorder makes an accepted share durable, asynchronously: RecordAsync
// queues a copy of the share and returns; done.ShareDone(token, err) is
// called exactly once when the share is durable (nil) or cannot be made so.
// A non-nil return means the share was not queued and done is not called.
// RecordAsync may block while the recorder's queue is full (backpressure).
// The miner hears true only after a nil ShareDone, and an error otherwise.
// *ledger.Recorder implements it.
type Recorder interface {
	RecordAsync(s *shares.Share, done shares.RecordDone, token uint64) error
}

// Rejection describes a rejected submit for statistics.
type Rejection struct {
	Worker  string // as submitted; the canonical name when authorized on the connection
	Address string // payout address of the worker when it is authorized on the connection
	Remote  string // ip:port
	Code    int
	Err     error
	// JobAge is the age of the job (since Job.CreatedAt) for a stale share
	// of a recently published job (code 21); zero otherwise.
	JobAge time.Duration
	Time   time.Time
}

// Observer receives rejections for statistics. It is called on the session's
// reader goroutine and must not block.
type Observer interface {
	ShareRejected(r Rejection)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Rejection)

// ShareRejected calls f(r).
func (f ObserverFunc) ShareRejected(r Rejection) { f(r) }
