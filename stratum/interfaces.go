package stratum

import (
	"context"
	"time"

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

// BlockSubmitter hands a block candidate to the node(s). It is called before
// the miner's reply is written; an error or an unconfirmed report is logged
// and counted, the share still counts (it met the share target).
// *shares.BlockSubmitter implements it.
type BlockSubmitter interface {
	Submit(ctx context.Context, c shares.Candidate) (shares.BlockReport, error)
}

var _ BlockSubmitter = (*shares.BlockSubmitter)(nil)

// BlockNotifier is told when the pool's own block was confirmed by a node,
// so the next job does not wait for the node's notice.
// *blocktemplate.Manager implements it.
type BlockNotifier interface {
	NewBlockFound(ctx context.Context) error
}

var _ BlockNotifier = (*blocktemplate.Manager)(nil)

// Recorder makes an accepted share durable. Record blocks until it is; the
// miner hears true only after it returns nil, and an error otherwise.
type Recorder interface {
	Record(ctx context.Context, s shares.Share) error
}

// Rejection describes a rejected submit for statistics.
type Rejection struct {
	Worker  string // as submitted
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
