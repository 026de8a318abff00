package main

// The adapters between the daemon's components: what one package calls,
// made of what another provides (stratum ↔ ledger, metrics, found blocks;
// templates and stratum counters ↔ API). roles.go wires them.

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
	"github.com/lode-pool/lode/stratum"
)

// stratumSnapshot copies the server's counters for a scrape.
func stratumSnapshot(st *stratum.Stats) api.StratumSnapshot {
	s := api.StratumSnapshot{
		Connections: st.Connections.Load(), Closes: map[string]uint64{}, Panics: st.Panics.Load(),
		StaleBounds: stratum.StaleAgeBuckets,
	}
	for i := range st.StaleByAge {
		s.StaleCounts = append(s.StaleCounts, st.StaleByAge[i].Load())
	}
	for _, r := range stratum.CloseReasons() {
		if n := st.ClosedBy(r); n > 0 {
			s.Closes[r.String()] = n
		}
	}
	bounds, counts, sum, n := st.TipToNotify.Snapshot()
	s.Fanout = api.HistogramSnapshot{Bounds: bounds, Counts: counts, Sum: sum, Count: n}
	bounds, counts, sum, n = st.Submit.Snapshot()
	s.Submit = api.HistogramSnapshot{Bounds: bounds, Counts: counts, Sum: sum, Count: n}
	return s
}

// managerJobs adapts the template manager to the API's job source.
type managerJobs struct{ m *blocktemplate.Manager }

func (j managerJobs) Current() *jobInfo {
	job := j.m.Current()
	if job == nil {
		return nil
	}
	info := &jobInfo{Height: job.Height, Received: job.CreatedAt}
	if job.Template != nil {
		info.Received = job.Template.ReceivedAt
	}
	if job.NetworkTarget != nil {
		info.Difficulty = blocktemplate.TargetToDifficulty(job.NetworkTarget)
	}
	return info
}

// rejectReason names a Stratum error code for metrics and worker stats.
func rejectReason(code int) string {
	switch code {
	case 21:
		return ledger.ReasonStale
	case 22:
		return "duplicate"
	case 23:
		return "low_difficulty"
	case 24:
		return "unauthorized"
	case 25:
		return "not_subscribed"
	}
	return "other"
}

// rejectObserver counts rejected shares in the metrics and, for authorized
// workers, in the worker's ledger statistics.
type rejectObserver struct {
	rec     *ledger.Recorder
	metrics func() *api.Metrics
}

func (o *rejectObserver) ShareRejected(r stratum.Rejection) {
	reason := rejectReason(r.Code)
	o.metrics().ShareRejected(reason)
	if r.Address != "" {
		o.rec.RecordReject(r.Worker, r.Address, reason)
	}
}

// shareRecorder is the stratum server's Recorder: the ledger's group
// commit, timed, and the hand-off of a block-finding share's sequence to the
// found blocks' owner once it is durable (the window ends at it).
type shareRecorder struct {
	rec     *ledger.Recorder
	found   *blocks.Tracker
	metrics func() *api.Metrics
}

// recordCall follows one share through the ledger; pooled, so the
// asynchronous path allocates nothing per share.
type recordCall struct {
	r      *shareRecorder
	done   shares.RecordDone
	token  uint64
	start  time.Time
	diff   float64
	block  *chainhash.Hash // the block the share found (nil: none)
	worker string
	seq    uint64 // the ledger's sequence of the share (ShareDoneSeq)
}

var recordCallPool = sync.Pool{New: func() any { return new(recordCall) }}

func (s *shareRecorder) RecordAsync(sh *shares.Share, done shares.RecordDone, token uint64) error {
	c := recordCallPool.Get().(*recordCall)
	*c = recordCall{r: s, done: done, token: token, start: time.Now(), diff: sh.Difficulty}
	if sh.Block && sh.BlockHash != nil {
		c.block, c.worker = sh.BlockHash, sh.Worker
	}
	if err := s.rec.RecordAsync(sh, c, 0); err != nil {
		*c = recordCall{}
		recordCallPool.Put(c)
		return err
	}
	return nil
}

// ShareDoneSeq implements ledger.SeqDone: the block-finding share's
// sequence goes to the snapshot, whose window ends at it.
func (c *recordCall) ShareDoneSeq(token, seq uint64, err error) {
	c.seq = seq
	c.ShareDone(token, err)
}

// ShareDone runs on the ledger's flusher: metrics, the found block's
// hand-over (also when recording failed: the node has the block, and its
// record must not be lost with the share), then the session.
func (c *recordCall) ShareDone(_ uint64, err error) {
	m := c.r.metrics()
	m.RecordLatency(time.Since(c.start))
	if err == nil {
		m.ShareAccepted(c.diff)
	}
	if c.block != nil {
		seq := "" // not durable: the window cannot end at it (late)
		if err == nil && c.seq != 0 {
			seq = c.r.rec.Instance() + ":" + strconv.FormatUint(c.seq, 10)
		}
		c.r.found.ShareDone(*c.block, c.worker, seq)
	}
	done, token := c.done, c.token
	*c = recordCall{}
	recordCallPool.Put(c)
	done.ShareDone(token, err)
}

// timedStore measures each group-commit batch the ledger writes.
type timedStore struct {
	ledger.Store
	metrics func() *api.Metrics
}

func (t *timedStore) ApplyBatch(ctx context.Context, b *ledger.Batch, windowLimit string) error {
	start := time.Now()
	err := t.Store.ApplyBatch(ctx, b, windowLimit)
	if err == nil && b.Kind != ledger.BatchStats { // a group commit, not the statistics of many
		t.metrics().LedgerBatch(time.Since(start), len(b.Shares))
	}
	return err
}
