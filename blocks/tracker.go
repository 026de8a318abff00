package blocks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
)

// Recorder takes a found block's record: the PPLNS window snapshot ending at
// the finding share, its archive, root and commitments, idempotent on the
// block hash (payouts.Recorder).
type Recorder interface {
	Record(ctx context.Context, b FoundBlock) error
}

// Config configures a Tracker.
type Config struct {
	// Submitter journals and submits the blocks. Required.
	Submitter *Submitter
	// Recorder takes each accepted block's record. Required.
	Recorder Recorder
	// PayoutScript is the pool's payout output script: the coinbase value
	// paid to it is the block's reward. Required.
	PayoutScript []byte
	// SpoolBytes is the share ledger's spool size (nil: no spool). A block
	// whose finding share's sequence is unknown is recorded late, with the
	// window as it is then; that record waits while the spool holds shares
	// (they belong in the window), up to SpoolWait.
	SpoolBytes func() int64
	// Submitted is told the outcome of each candidate's submission
	// (metrics; nil: nothing).
	Submitted func(confirmed bool)
	// RetryMin and RetryMax bound the backoff of failed records (defaults
	// DefaultRetryMin, DefaultRetryMax).
	RetryMin, RetryMax time.Duration
	// LiveGrace is how long Run leaves an accepted block whose finding
	// share is still being recorded to the hand-over (ShareDone) before it
	// records the block itself (default DefaultLiveGrace).
	LiveGrace time.Duration
	// SpoolWait bounds how long a late record waits for the share spool to
	// drain (default DefaultSpoolWait).
	SpoolWait time.Duration
	Logger    *zap.Logger // nil: no logging
}

// Defaults of Config.
const (
	DefaultRetryMin  = 500 * time.Millisecond
	DefaultRetryMax  = 10 * time.Second
	DefaultLiveGrace = time.Minute
	DefaultSpoolWait = 2 * time.Minute
)

// forgetAfter: an in-memory block entry that never completes its hand-over
// (a finding share whose block no node took, a block whose share never
// comes back) is dropped after this long; the journal still holds what
// matters.
const forgetAfter = 10 * time.Minute

// Tracker owns found blocks from the candidate to their record, keyed by
// block hash. Submit (called by the stratum server beside the recording of
// the share) journals the block and submits it to every node; ShareDone
// (called when the share ledger answered the block's share) hands over the
// finding share's worker and sequence. Once a node has the block and its
// share is durable, the record is taken with the window ending at that
// share. A block whose record fails (store down, crash) stays in the journal
// with its finder and sequence, and Run retries it with backoff, also after
// a restart, so it gets its exact window then too. Run also resubmits the
// blocks no node confirmed. It is safe for concurrent use.
type Tracker struct {
	cfg     Config
	sub     *Submitter
	log     *zap.Logger
	wake    chan struct{} // a record failed or a block was accepted: Run looks at the journal
	started time.Time     // when the Tracker was made

	// Records taken beside the submission (recordFinder) run on goroutines
	// under bg, which Run cancels when it ends, and are waited for by Run:
	// a record cut short stays in the journal for the next start.
	bg     context.Context
	stopBg context.CancelFunc
	work   sync.WaitGroup

	mu    sync.Mutex
	found map[chainhash.Hash]*found
}

// found is the in-memory state of one block while its hand-over between the
// submission and the share ledger is under way.
type found struct {
	created time.Time // first seen (Submit or ShareDone)
	cand    *shares.Candidate
	height  int64
	// journaled: the block line is written; the finding share's line may
	// follow it.
	journaled bool
	accepted  bool      // a node confirmed the block at Submit
	since     time.Time // when it was accepted
	shareDone bool      // the ledger answered the finding share
	worker    string
	seq       string // the finding share's sequence; "" when not durable
	recording bool   // recordFinder runs
	// failed: its record failed and Run retries it (also when its journal
	// lines could not be written: block is kept for that).
	failed bool
	block  Block
}

// New checks cfg and returns a Tracker.
func New(cfg Config) (*Tracker, error) {
	if cfg.Submitter == nil {
		return nil, errors.New("blocks: tracker needs a Submitter")
	}
	if cfg.Recorder == nil {
		return nil, errors.New("blocks: tracker needs a Recorder")
	}
	if len(cfg.PayoutScript) == 0 {
		return nil, errors.New("blocks: tracker needs the pool's payout script")
	}
	if cfg.RetryMin == 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.LiveGrace == 0 {
		cfg.LiveGrace = DefaultLiveGrace
	}
	if cfg.SpoolWait == 0 {
		cfg.SpoolWait = DefaultSpoolWait
	}
	if cfg.RetryMin < 0 || cfg.RetryMax < cfg.RetryMin || cfg.LiveGrace < 0 || cfg.SpoolWait < 0 {
		return nil, fmt.Errorf("blocks: retry %v–%v, live grace %v, spool wait %v: want positive durations, min ≤ max",
			cfg.RetryMin, cfg.RetryMax, cfg.LiveGrace, cfg.SpoolWait)
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	bg, stopBg := context.WithCancel(context.Background())
	return &Tracker{cfg: cfg, sub: cfg.Submitter, log: log, wake: make(chan struct{}, 1), started: time.Now(), bg: bg, stopBg: stopBg,
		found: map[chainhash.Hash]*found{}}, nil
}

// entry returns the in-memory state of hash, created if missing. Called
// with t.mu held.
func (t *Tracker) entry(hash chainhash.Hash) *found {
	f := t.found[hash]
	if f == nil {
		f = &found{created: time.Now()}
		t.found[hash] = f
	}
	return f
}

// Submit journals the candidate's block (with its finder, c.Worker), notes
// its finding share if the ledger already answered it, and submits it to
// every node (Submitter.Submit). When a node took it and the finding share
// is durable, the record is taken. It implements stratum.BlockSubmitter.
func (t *Tracker) Submit(ctx context.Context, c shares.Candidate) (Report, error) {
	block, journalErr, err := t.sub.Journal(c)
	if err != nil {
		if t.cfg.Submitted != nil {
			t.cfg.Submitted(false)
		}
		return Report{}, err
	}
	t.mu.Lock()
	f := t.entry(c.Hash)
	f.cand, f.height, f.block = &c, c.Job.Height, block
	f.journaled = journalErr == nil
	note := f.journaled && f.shareDone
	worker, seq := f.worker, f.seq
	t.mu.Unlock()
	if note {
		t.noteFinding(c.Hash, c.Job.Height, worker, seq)
	}
	report := t.sub.SubmitBlock(ctx, block, c.Job.Height)
	report.JournalErr = journalErr
	if t.cfg.Submitted != nil {
		t.cfg.Submitted(report.Confirmed)
	}
	if report.Confirmed {
		t.mu.Lock()
		f.accepted, f.since = true, time.Now()
		start := f.shareDone && !f.recording
		f.recording = f.recording || start
		t.mu.Unlock()
		if start {
			t.goRecord(func() { t.recordFinder(t.bg, c.Hash, f) })
		}
	}
	// Confirmed: if the share never comes back, Run records the block
	// after LiveGrace. Not confirmed (node down, hung, or undecided): Run
	// resubmits it from the journal until the chain settles it.
	t.poke()
	return report, nil
}

// ShareDone is told that the share ledger answered the share that found
// block hash: its worker and its sequence ("instance:counter"; "" when the
// share was not made durable, and the window cannot end at it). It returns
// at once (it runs on the ledger's flusher): the finding share is journaled
// with the block and, if a node already took the block, its record is taken
// on a goroutine of its own.
func (t *Tracker) ShareDone(hash chainhash.Hash, worker, seq string) {
	t.mu.Lock()
	f := t.entry(hash)
	if f.shareDone {
		t.mu.Unlock()
		return
	}
	f.shareDone, f.worker, f.seq = true, worker, seq
	note := f.journaled
	start := f.accepted && !f.recording
	f.recording = f.recording || start
	height := f.height
	t.mu.Unlock()
	if !note && !start {
		return
	}
	// Off the ledger's flusher: the journal fsyncs, and with Redis down
	// the record waits on dial retries (a failed one is retried by Run).
	t.goRecord(func() {
		if note {
			t.noteFinding(hash, height, worker, seq)
		}
		if start {
			t.recordFinder(t.bg, hash, f)
		}
	})
}

// goRecord runs fn on a goroutine Run waits for.
func (t *Tracker) goRecord(fn func()) {
	t.work.Add(1)
	go func() {
		defer t.work.Done()
		fn()
	}()
}

// noteFinding journals the finding share of a journaled block; a failure
// only costs the exactness of a record taken after a restart.
func (t *Tracker) noteFinding(hash chainhash.Hash, height int64, worker, seq string) {
	if err := t.sub.NoteFinding(hash, height, worker, seq); err != nil {
		t.log.Error("found block: finding share not journaled", zap.Stringer("hash", hash), zap.Error(err))
	}
}

func (t *Tracker) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// recordFinder takes the record of the accepted block f, whose finding
// share the ledger answered. On failure the block stays in the journal (and
// in memory) and Run retries it.
func (t *Tracker) recordFinder(ctx context.Context, hash chainhash.Hash, f *found) {
	t.mu.Lock()
	block, height, worker, seq, at := f.block, f.height, f.worker, f.seq, f.created
	t.mu.Unlock()
	err := t.record(ctx, block, height, worker, at, seq)
	t.mu.Lock()
	f.recording = false
	if err == nil {
		delete(t.found, hash)
	} else {
		f.failed = true
	}
	t.mu.Unlock()
	if err != nil {
		t.poke()
	}
}

// record takes the record of one accepted block and marks it recorded in the
// journal. foundAt is when the pool found it (the header's time can be off
// by the miner's clock and ntime rolling): the time the dashboard and
// lodectl show. seq is the finding share's ledger sequence: the window ends
// at it ("" when unknown: the record is late, docs/verify.md).
func (t *Tracker) record(ctx context.Context, block Block, height int64, finder string, foundAt time.Time, seq string) error {
	hash := block.Hash
	fb, err := foundBlock(block, height, finder, t.cfg.PayoutScript)
	if err != nil {
		t.log.Error("found block record", zap.Stringer("hash", hash), zap.Error(err))
		return err
	}
	fb.FindingSeq = seq
	if !foundAt.IsZero() {
		fb.Time = foundAt
	}
	if err := t.cfg.Recorder.Record(ctx, fb); err != nil {
		t.log.Error("found block not recorded yet; will retry", zap.Stringer("hash", hash), zap.Int64("height", height), zap.Error(err))
		return err
	}
	// A failed mark only means the (idempotent) record is taken again.
	if err := t.sub.MarkRecorded(hash, height); err != nil {
		t.log.Error("found block recorded but not marked in the journal", zap.Stringer("hash", hash), zap.Error(err))
	}
	return nil
}

// foundBlock is NewFoundBlock from the block's header and coinbase.
func foundBlock(block Block, height int64, finder string, payoutScript []byte) (FoundBlock, error) {
	head, err := block.Head()
	if err != nil {
		return FoundBlock{}, err
	}
	return NewFoundBlock(head, height, finder, payoutScript)
}

// Retrying returns how many accepted blocks wait in memory for a retry of
// their record (after a failed attempt; their journal lines may be missing
// too, when the journal could not be written).
func (t *Tracker) Retrying() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, f := range t.found {
		if f.failed {
			n++
		}
	}
	return n
}

// Run resubmits the blocks the journal holds without a node's confirmation
// (Submitter.Recover, retried until it gets through), then records every
// accepted block the journal (or memory) holds unrecorded, retrying with
// backoff until ctx ends. Records are idempotent on the block hash: a block
// recorded twice keeps its first record. It must be run once, as a
// goroutine; it returns nil when ctx ends, after the records running beside
// submissions have stopped (cancelled: a record cut short stays in the
// journal and is taken at the next start).
func (t *Tracker) Run(ctx context.Context) error {
	defer t.work.Wait()
	defer t.stopBg()
	delay := t.cfg.RetryMin
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	woke, recovered := false, false
	for {
		retry.Stop()
		if !recovered || t.submissionsPending() {
			// A block the nodes have not settled yet (the node was down or
			// hung when it was found, or a previous run died) is submitted
			// again until the chain has it or has moved past its height.
			// Not a gate for the records below: a journal Recover cannot
			// rewrite must not keep the blocks it lists unrecorded.
			if _, err := t.sub.Recover(ctx); err == nil {
				recovered = !t.submissionsPending()
			} else if ctx.Err() == nil {
				recovered = false
				t.log.Error("block journal recovery; will retry", zap.Error(err))
			}
		}
		waiting, failed, recorded := t.recordUnrecorded(ctx)
		left := waiting + failed
		if !recovered {
			failed++
		}
		switch {
		case failed > 0: // the store (or the journal) fails: back off
			retry.Reset(delay)
			delay = min(2*delay, t.cfg.RetryMax)
		case waiting > 0: // only waiting for the hand-over or the spool: look again soon
			delay = t.cfg.RetryMin
			retry.Reset(delay)
		default:
			delay = t.cfg.RetryMin
		}
		if recorded > 0 || (woke && left == 0) {
			// Recorded blocks leave the journal, also those recordFinder
			// recorded (a block's hex is megabytes on mainnet).
			if err := t.sub.Compact(); err != nil {
				t.log.Warn("block journal compaction", zap.Error(err))
			}
		}
		t.forget()
		woke = false
		select {
		case <-ctx.Done():
			return nil
		case <-t.wake:
			woke = true
		case <-retry.C:
		}
	}
}

// forget drops in-memory entries whose hand-over never completed (see
// forgetAfter); failed records are kept until they succeed.
func (t *Tracker) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, f := range t.found {
		if !f.failed && !f.recording && time.Since(f.created) > forgetAfter {
			delete(t.found, h)
		}
	}
}

// submissionsPending reports whether the journal holds blocks whose
// submission the chain has not settled (an unreadable journal counts).
func (t *Tracker) submissionsPending() bool {
	p, err := t.sub.Pending()
	return err != nil || len(p) > 0
}

// recordUnrecorded records the accepted blocks not recorded yet: the
// journal's, and those whose record failed while their journal lines could
// not be written. It returns how many it left for later (the hand-over's
// or the spool's turn), how many it failed to record, and how many it
// recorded.
func (t *Tracker) recordUnrecorded(ctx context.Context) (waiting, failed, recorded int) {
	blocks, err := t.sub.Unrecorded()
	if err != nil {
		t.log.Error("block journal", zap.Error(err))
		failed++ // the in-memory ones below are still tried
	}
	journaled := make(map[chainhash.Hash]bool, len(blocks))
	for _, b := range blocks {
		journaled[b.Hash] = true
	}
	t.mu.Lock()
	for h, f := range t.found {
		if f.failed && !journaled[h] && f.block.Raw != nil {
			blocks = append(blocks, Accepted{Hash: h, Height: f.height, Block: f.block, Finder: f.worker, Seq: f.seq, Time: f.created})
		}
	}
	t.mu.Unlock()
	for _, b := range blocks {
		if ctx.Err() != nil {
			return waiting, failed, recorded
		}
		t.mu.Lock()
		f := t.found[b.Hash]
		live := f != nil && !f.failed && (f.recording || (f.accepted && !f.shareDone && time.Since(f.since) < t.cfg.LiveGrace))
		if f != nil && f.failed && f.seq != "" && b.Seq == "" {
			b.Seq = f.seq // its line could not be journaled
		}
		if f != nil && f.failed && f.worker != "" && b.Finder == "" {
			b.Finder = f.worker
		}
		if live {
			t.mu.Unlock()
			waiting++ // the hand-over is on it; look again later
			continue
		}
		if f != nil {
			f.recording = true // not recordFinder's any more
		}
		t.mu.Unlock()
		if b.Seq == "" && t.cfg.SpoolBytes != nil && t.cfg.SpoolBytes() > 0 && time.Since(later(b.Time, t.started)) < t.cfg.SpoolWait {
			// A late record counts the window as it is: the shares accepted
			// during the outage are still to be replayed into it.
			t.release(b.Hash, false)
			waiting++
			continue
		}
		err := t.record(ctx, b.Block, b.Height, b.Finder, b.Time, b.Seq)
		t.release(b.Hash, err == nil)
		if err != nil {
			if _, bad := foundBlock(b.Block, b.Height, b.Finder, t.cfg.PayoutScript); bad == nil {
				failed++ // the store, not the block: try again
			}
			continue
		}
		recorded++
		boundary := "exact"
		if b.Seq == "" {
			boundary = "late"
		}
		t.log.Info("found block recorded late", zap.Stringer("hash", b.Hash), zap.Int64("height", b.Height),
			zap.String("finder", b.Finder), zap.String("finding_seq", b.Seq), zap.String("window", boundary))
	}
	return waiting, failed, recorded
}

// release ends Run's hold on an in-memory entry: dropped once recorded.
func (t *Tracker) release(hash chainhash.Hash, recorded bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.found[hash]; f != nil {
		f.recording = false
		if recorded {
			delete(t.found, hash)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
