package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
)

// Errors callers can test for with errors.Is.
var (
	// ErrClosed: the Recorder is not running (Run returned or never ran
	// after a Close).
	ErrClosed = errors.New("ledger: recorder closed")
	// ErrInvalidShare: the share cannot be recorded (difficulty not in
	// (0, MaxDifficulty] or below one diff unit, empty worker or address,
	// '|' in the address).
	ErrInvalidShare = errors.New("ledger: invalid share")
	// ErrNotDurable: neither the Store nor the spool took the batch.
	ErrNotDurable = errors.New("ledger: share not durable")
)

// MaxDifficulty is the largest share difficulty recorded (10^15, far above
// any useful share difficulty); it keeps the store's exact sums in range.
const MaxDifficulty = 1e15

// Defaults for Config fields left zero.
const (
	DefaultMaxBatch = 256
	// DefaultMaxDelay is 0: a batch is written as soon as no write is in
	// flight, and the shares that arrive during that write form the next
	// batch. Under load the batches fill by themselves (one Store round
	// trip's worth of shares); at a low rate a share waits for no timer.
	DefaultMaxDelay        = 0
	DefaultWindowFactor    = 2.0 // X in N = X × network difficulty (WindowDifficulty); the one default
	DefaultWriteTimeout    = 2 * time.Second
	DefaultRetryInterval   = 500 * time.Millisecond
	DefaultMaxSpoolBytes   = 1 << 30
	DefaultShutdownTimeout = 10 * time.Second
	// maxStatsShares bounds the shares whose statistics wait for the next
	// statistics batch; reaching it writes one at once. It is above a
	// second's shares of a busy frontend, so that statistics are written
	// once per StatsInterval, their Redis work growing with the active
	// workers, not with the shares: at 16,384 a frontend recording 35,000
	// shares/s flushed twice a second, each worker in both flushes
	// (bench/README.md, issue 14, fourth round).
	maxStatsShares = 65536
	// replayChunk bounds the spooled batches one replay attempt applies (and
	// the flusher holds decoded in memory).
	replayChunk = 64
)

// WindowMargin is the part of N the window list keeps beyond N: a found
// block's snapshot, taken after later batches landed, still finds the N
// units before its finding share (docs/verify.md).
const WindowMargin = 0.25

// Config configures a Recorder. It is also lode.yaml's ledger: section
// (config.go: the file's defaults, its checks and its keys, here on the
// fields; fields tagged "-" are wired by the daemon).
type Config struct {
	// Instance identifies this process in sequence numbers; letters, digits,
	// '-' and '_' only. Several lode processes sharing one Redis must use
	// different ids. Default: a random id, new at each start (the spool keeps
	// the id of the process that wrote each batch).
	Instance string `yaml:"-"`
	// MaxBatch is the largest batch of shares written at once (default 256).
	MaxBatch int `yaml:"batch_size"`
	// MaxDelay is how long the first share of a batch waits for more
	// before the write starts (default 0: the write starts at once when
	// none is in flight; shares arriving during a write form the next
	// batch). A positive value trades latency for fuller batches.
	MaxDelay time.Duration `yaml:"batch_wait"`
	// WindowFactor is X in the PPLNS window size N = X × network difficulty
	// (default 2). The daemon sets it from pool.pplns_window.
	WindowFactor float64 `yaml:"-"`
	// MinWindow is a floor for N in difficulty (default 0). Useful on
	// regtest, where X × network difficulty is below one share. The daemon
	// sets it from pool.pplns_min_window.
	MinWindow float64 `yaml:"-"`
	// SpoolPath is the spool file used while the Store is unreachable. Empty
	// disables the spool: Record then fails while the Store does.
	SpoolPath string `yaml:"-"`
	// SpoolDir, when SpoolPath is empty, puts the spool in this folder
	// (SpoolFile): lode.yaml's ledger.spool_dir, where the daemon also
	// keeps the found-block journal.
	SpoolDir string `yaml:"spool_dir"`
	// MaxSpoolBytes bounds the spool (default 1 GiB, negative: no bound);
	// a full spool makes Record fail.
	MaxSpoolBytes int64 `yaml:"max_spool_bytes"`
	// WriteTimeout bounds one Store write (default 2s).
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// RetryInterval is the pause between attempts to replay the spool while
	// the Store fails (default 500ms).
	RetryInterval time.Duration `yaml:"retry_interval"`
	// ShutdownTimeout bounds the final flush when Run's ctx ends
	// (default 10s).
	ShutdownTimeout time.Duration `yaml:"-"`
	// StatsInterval, when positive, writes the statistics of recorded
	// shares (worker and address counters, hashrate buckets, recent shares)
	// and the rejects as one batch per interval for all the shares of the
	// interval, instead of with every group commit (default 0: with every
	// group commit, so statistics are as durable as the shares). The
	// accounting (PPLNS window, round totals) is written before each share
	// is acknowledged either way. With an interval, statistics lag by up to
	// an interval and a crash (SIGKILL) loses at most that interval's
	// statistics, never a share's credit; in exchange a group commit is
	// one script call instead of two, and the statistics of a busy interval
	// are aggregated once (much less Redis and lode CPU per share when
	// group commits are small).
	StatsInterval time.Duration `yaml:"stats_interval"`
	Logger        *zap.Logger   `yaml:"-"`
}

func (c *Config) setDefaults() error {
	if c.Instance == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("instance id: %w", err)
		}
		c.Instance = hex.EncodeToString(b[:])
	}
	for _, r := range c.Instance {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("instance id %q: only letters, digits, '-' and '_'", c.Instance)
		}
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxDelay < 0 {
		return fmt.Errorf("max delay %v: must not be negative", c.MaxDelay)
	}
	if c.WindowFactor == 0 {
		c.WindowFactor = DefaultWindowFactor
	}
	if c.WindowFactor < 0 || math.IsNaN(c.WindowFactor) || math.IsInf(c.WindowFactor, 0) {
		return fmt.Errorf("window factor %v: must be positive", c.WindowFactor)
	}
	if c.MinWindow < 0 || math.IsNaN(c.MinWindow) || math.IsInf(c.MinWindow, 0) {
		return fmt.Errorf("min window %v: must be non-negative", c.MinWindow)
	}
	if c.SpoolPath == "" && c.SpoolDir != "" {
		c.SpoolPath = filepath.Join(c.SpoolDir, SpoolFile)
	}
	if c.MaxSpoolBytes == 0 {
		c.MaxSpoolBytes = DefaultMaxSpoolBytes
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = DefaultRetryInterval
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = DefaultShutdownTimeout
	}
	if c.StatsInterval < 0 {
		c.StatsInterval = 0
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// Done is told the outcome of a share handed to RecordAsync: err is nil once
// the share is durable (applied by the Store or fsynced to the spool), and
// wraps ErrNotDurable (or is ErrClosed) when it is not. token is the value
// given to RecordAsync, so one Done can follow many shares (a connection
// answers its shares in order by token).
//
// ShareDone runs on the flusher goroutine and must not block: the next
// batch waits for it. The shares of one batch are completed last to first,
// so a Done that answers in token order sees a connection's whole run of
// shares in the batch ready at its first one and can answer them at once.
type Done = shares.RecordDone

// SeqDone is an optional extension of Done: a Done that implements it is
// answered through ShareDoneSeq instead of ShareDone, with the share's
// sequence number as well (the counter of "instance:counter"; Instance
// gives the instance). A found block's PPLNS snapshot ends at its share's
// sequence (payouts.FoundBlock.FindingSeq).
type SeqDone interface {
	ShareDoneSeq(token, seq uint64, err error)
}

// request is one share waiting for its batch.
type request struct {
	entry Entry
	done  Done
	token uint64
}

var requestPool = sync.Pool{New: func() any { return new(request) }}

// waiter is the Done of a blocking Record call.
type waiter struct{ ch chan error } // buffered(1)

func (w *waiter) ShareDone(_ uint64, err error) { w.ch <- err }

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan error, 1)} }}

type rejectKey struct{ worker, address, reason string }

type rejectCount struct {
	n    int64
	last time.Time
}

// Stats are the Recorder's counters, for metrics.
type Stats struct {
	Batches       uint64 // batches the Store acknowledged (live and replayed)
	Shares        uint64 // shares acknowledged (Store or spool)
	Spooled       uint64 // batches appended to the spool
	Replayed      uint64 // spooled batches the Store acknowledged
	Failed        uint64 // shares answered with ErrNotDurable
	SpoolPending  bool   // the spool holds batches not yet replayed
	SpoolBytes    int64
	QueueCapacity int
}

// Recorder batches accepted shares into group commits. Build it with New and
// run its flusher with Run.
type Recorder struct {
	cfg   Config
	store Store
	log   *zap.Logger
	spool *spool // nil when disabled

	queue   chan *request
	kick    chan struct{} // wakes the flusher for rejects
	done    chan struct{} // closed when Run has returned
	running atomic.Bool
	// stopping is set when shutdown starts: no share is queued after it.
	stopping atomic.Bool
	// senders counts RecordAsync calls between their stopping check and
	// their queue send.
	senders atomic.Int32

	netDiff atomic.Uint64 // float64 bits

	rejMu   sync.Mutex
	rejects map[rejectKey]*rejectCount

	// replayDone receives the outcome of the one replay attempt in flight.
	replayDone chan replayResult

	// Owned by the flusher goroutine.
	seq        uint64
	replayOff  int64
	nextReplay time.Time
	replaying  bool // a replay attempt is in flight
	catchingUp bool // the last replay attempt succeeded (Redis answers)
	// replayFailures counts failed replay attempts in a row (log sampling).
	replayFailures int
	reqs           []*request
	batch          Batch
	// Statistics waiting for the next statistics batch (StatsInterval > 0):
	// the entries of durable shares, and when the batch is due.
	statsShares []Entry
	statsDue    time.Time
	statsTimer  *time.Timer
	statsBatch  Batch

	batches, sharesN, spooled, replayed, failed atomic.Uint64
	spoolBytes                                  atomic.Int64
	spoolPending                                atomic.Bool
}

// New returns a Recorder writing to store. It opens the spool (keeping what
// an earlier run left there, which Run replays first).
func New(cfg Config, store Store) (*Recorder, error) {
	if store == nil {
		return nil, errors.New("new recorder: nil store")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("new recorder: %w", err)
	}
	r := &Recorder{
		cfg:        cfg,
		store:      store,
		log:        cfg.Logger,
		queue:      make(chan *request, 4*cfg.MaxBatch),
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		rejects:    make(map[rejectKey]*rejectCount),
		replayDone: make(chan replayResult, 1),
	}
	if cfg.SpoolPath != "" {
		sp, err := openSpool(cfg.SpoolPath, cfg.MaxSpoolBytes)
		if err != nil {
			return nil, fmt.Errorf("new recorder: %w", err)
		}
		r.spool = sp
		r.noteSpool()
		if sp.pending() {
			r.log.Warn("spool holds unreplayed batches", zap.String("path", cfg.SpoolPath),
				zap.Int("batches", sp.records), zap.Int64("bytes", sp.size))
		}
	} else {
		r.log.Warn("no spool configured: shares fail while Redis is unreachable")
	}
	return r, nil
}

// Instance returns the instance id in use.
func (r *Recorder) Instance() string { return r.cfg.Instance }

// SetNetworkDifficulty sets the network difficulty the PPLNS window size is
// derived from. The daemon calls it with each new template.
func (r *Recorder) SetNetworkDifficulty(d float64) {
	if d > 0 && !math.IsInf(d, 0) {
		r.netDiff.Store(math.Float64bits(d))
	}
}

// WindowLimit returns the current window size N in diff units ("0" while
// the network difficulty is unknown and MinWindow is 0).
func (r *Recorder) WindowLimit() string {
	n := WindowDifficulty(r.cfg.WindowFactor, r.cfg.MinWindow, math.Float64frombits(r.netDiff.Load()))
	u, err := DiffUnits(n)
	if err != nil {
		return "0"
	}
	return u
}

// trimLimit is what the store trims the window list to: N plus
// WindowMargin of N ("0" while N is unknown).
func (r *Recorder) trimLimit() string {
	n := WindowDifficulty(r.cfg.WindowFactor, r.cfg.MinWindow, math.Float64frombits(r.netDiff.Load())) * (1 + WindowMargin)
	u, err := DiffUnits(n)
	if err != nil {
		return "0"
	}
	return u
}

// Record queues s and blocks until the batch holding it is durable (applied
// by the Store or fsynced to the spool). A nil error means the share is
// recorded and the miner may be told so. If ctx ends first, Record returns
// ctx.Err() and the share may or may not be recorded. It is RecordAsync
// with a wait.
func (r *Recorder) Record(ctx context.Context, s shares.Share) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	w := waiterPool.Get().(*waiter)
	if err := r.recordAsync(ctx, &s, w, 0); err != nil {
		waiterPool.Put(w)
		return err
	}
	select {
	case err := <-w.ch:
		waiterPool.Put(w)
		return err
	case <-ctx.Done():
		// The flusher still holds w and will answer it; w is not reused.
		return ctx.Err()
	}
}

// RecordAsync queues s for the next batch and returns without waiting for
// it to be durable: done.ShareDone(token, err) is called exactly once, on
// the flusher goroutine, when it is (err nil) or when it cannot be (err
// wraps ErrNotDurable, or ErrClosed at shutdown). A non-nil return means
// the share was not queued (ErrInvalidShare, ErrClosed) and done is not
// called. The share is copied; s may be reused at once. RecordAsync blocks
// only while the queue is full (every queued share waits for Redis): that
// is the backpressure on the submitting connections.
func (r *Recorder) RecordAsync(s *shares.Share, done Done, token uint64) error {
	if done == nil {
		return errors.New("record share: nil Done")
	}
	return r.recordAsync(context.Background(), s, done, token)
}

// recordAsync queues s; ctx bounds the wait for queue space.
func (r *Recorder) recordAsync(ctx context.Context, s *shares.Share, done Done, token uint64) error {
	if s.Worker == "" || s.Address == "" || strings.IndexByte(s.Address, '|') >= 0 {
		return fmt.Errorf("record share: %w: worker %q address %q", ErrInvalidShare, s.Worker, s.Address)
	}
	if !(s.Difficulty > 0) || s.Difficulty > MaxDifficulty {
		return fmt.Errorf("record share: %w: difficulty %v", ErrInvalidShare, s.Difficulty)
	}
	units, err := DiffUnits(s.Difficulty)
	if err != nil || units == "0" {
		return fmt.Errorf("record share: %w: difficulty %v below one diff unit", ErrInvalidShare, s.Difficulty)
	}
	// Counted before the check: shutdown waits for every sender that got
	// past it, so no share is left in the queue unanswered (see shutdown).
	r.senders.Add(1)
	defer r.senders.Add(-1)
	if r.stopping.Load() {
		return ErrClosed
	}
	req := requestPool.Get().(*request)
	req.entry = Entry{Units: units, Share: *s}
	if req.entry.Share.Time.IsZero() {
		req.entry.Share.Time = time.Now()
	}
	req.done, req.token = done, token
	select {
	case r.queue <- req:
		return nil
	default:
	}
	r.log.Warn("share queue full: Redis writes are slower than submissions")
	select {
	case r.queue <- req:
		return nil
	case <-ctx.Done():
		r.release(req)
		return ctx.Err()
	case <-r.done:
		r.release(req)
		return ErrClosed
	}
}

func (r *Recorder) release(req *request) {
	*req = request{}
	requestPool.Put(req)
}

// RecordReject counts a rejected share of worker (reason ReasonStale counts
// as stale). It never blocks: counts are merged in memory and written with
// the next batch.
func (r *Recorder) RecordReject(worker, address, reason string) {
	now := time.Now()
	k := rejectKey{worker, address, reason}
	r.rejMu.Lock()
	c := r.rejects[k]
	if c == nil {
		if len(r.rejects) >= 1<<16 {
			// A flood of distinct workers while the flusher is stuck: keep
			// memory bounded, statistics may undercount.
			r.rejMu.Unlock()
			return
		}
		c = &rejectCount{}
		r.rejects[k] = c
	}
	c.n++
	c.last = now
	r.rejMu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Stats returns the Recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{
		Batches:       r.batches.Load(),
		Shares:        r.sharesN.Load(),
		Spooled:       r.spooled.Load(),
		Replayed:      r.replayed.Load(),
		Failed:        r.failed.Load(),
		SpoolPending:  r.spoolPending.Load(),
		SpoolBytes:    r.spoolBytes.Load(),
		QueueCapacity: cap(r.queue),
	}
}

// Run is the flusher: it commits batches until ctx ends, then flushes what is
// queued (bounded by ShutdownTimeout), closes the spool and returns. Spooled
// batches (from an earlier run or an outage) are replayed by one replay
// attempt at a time running beside the flusher (see startReplay). It must be
// called once.
func (r *Recorder) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("ledger: Run called twice")
	}
	defer close(r.done)
	r.initSeq(ctx)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	r.statsTimer = time.NewTimer(time.Hour)
	r.statsTimer.Stop()
	defer r.statsTimer.Stop()
	for {
		if !r.statsDue.IsZero() && !time.Now().Before(r.statsDue) {
			r.flushStats(ctx)
		}
		r.startReplay(ctx)
		if r.replaying && r.catchingUp {
			// The last attempt succeeded: Redis answers, and the spool must
			// drain even under full load. Appending while a chunk is applied
			// could add batches as fast as they are replayed, so wait for
			// the chunk, then serve the queue with one batch (queued shares
			// merge into it) before the next chunk. If Redis fails during
			// catch-up this wait lasts one attempt, like the first live write
			// of an outage; the next attempts run beside the flusher again.
			select {
			case <-ctx.Done():
				r.shutdown(ctx)
				return nil
			case res := <-r.replayDone:
				r.finishReplay(res)
			}
			select {
			case req := <-r.queue:
				r.reqs = append(r.reqs[:0], req)
				r.collect(ctx, timer)
				r.commit(ctx)
			case <-r.kick:
				if r.cfg.StatsInterval > 0 {
					r.armStats()
				} else {
					r.reqs = r.reqs[:0]
					r.collect(ctx, timer)
					r.commit(ctx)
				}
			default:
			}
			continue
		}
		var statsC <-chan time.Time
		if !r.statsDue.IsZero() {
			statsC = r.statsTimer.C
		}
		var wait <-chan time.Time
		if r.spool != nil && r.spool.pending() && !r.replaying {
			// A failed attempt waits RetryInterval before the next one.
			timer.Reset(time.Until(r.nextReplay))
			wait = timer.C
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			r.shutdown(ctx)
			return nil
		case <-wait:
			continue
		case res := <-r.replayDone:
			timer.Stop()
			r.finishReplay(res)
			continue
		case <-statsC:
			timer.Stop()
			continue // flushed at the top of the loop
		case req := <-r.queue:
			timer.Stop()
			r.reqs = append(r.reqs[:0], req)
			r.collect(ctx, timer)
		case <-r.kick:
			timer.Stop()
			if r.cfg.StatsInterval > 0 {
				r.armStats() // rejects go with the next statistics batch
				continue
			}
			r.reqs = r.reqs[:0]
			r.collect(ctx, timer)
		}
		r.commit(ctx)
	}
}

// armStats schedules the next statistics batch if none is scheduled.
func (r *Recorder) armStats() {
	if r.statsDue.IsZero() {
		r.statsDue = time.Now().Add(r.cfg.StatsInterval)
		r.statsTimer.Reset(r.cfg.StatsInterval)
	}
}

// flushStats writes the statistics of the shares made durable since the
// last statistics batch, and the rejects counted meanwhile, as one
// BatchStats (to the Store, or to the spool in order like any batch).
func (r *Recorder) flushStats(ctx context.Context) {
	r.statsDue = time.Time{}
	r.statsTimer.Stop()
	b := &r.statsBatch
	b.Instance, b.Kind = r.cfg.Instance, BatchStats
	b.Shares = r.statsShares
	b.Rejects = r.takeRejects(b.Rejects[:0])
	if len(b.Shares) == 0 && len(b.Rejects) == 0 {
		return
	}
	b.Seq = r.nextSeq()
	if err := r.persist(ctx, b); err != nil {
		// Statistics only, no share's credit: keep them for the next
		// attempt while they are few, else drop them.
		r.log.Error("share statistics not written", zap.Int("shares", len(b.Shares)), zap.Int("reject_groups", len(b.Rejects)), zap.Error(err))
		if len(b.Shares) < maxStatsShares {
			r.armStats()
			r.mergeRejects(b.Rejects)
			return
		}
	}
	clear(r.statsShares)
	r.statsShares = r.statsShares[:0]
}

// takeRejects appends the pending reject counts to dst and clears them.
func (r *Recorder) takeRejects(dst []Reject) []Reject {
	r.rejMu.Lock()
	for k, c := range r.rejects {
		dst = append(dst, Reject{Worker: k.worker, Address: k.address, Reason: k.reason, Count: c.n, Time: c.last})
		delete(r.rejects, k)
	}
	r.rejMu.Unlock()
	return dst
}

// mergeRejects puts reject counts that could not be written back.
func (r *Recorder) mergeRejects(rs []Reject) {
	r.rejMu.Lock()
	defer r.rejMu.Unlock()
	for _, x := range rs {
		k := rejectKey{x.Worker, x.Address, x.Reason}
		c := r.rejects[k]
		if c == nil {
			c = &rejectCount{}
			r.rejects[k] = c
		}
		c.n += x.Count
		if x.Time.After(c.last) {
			c.last = x.Time
		}
	}
}

// probeTimeout bounds the high-water read used as a probe (a single GET,
// well under a millisecond on a healthy Redis). While Redis is down, a
// client keeps redialling until its deadline, so a short bound keeps each
// failed probe cheap and notices Redis coming back within about
// RetryInterval + probeTimeout.
func (r *Recorder) probeTimeout() time.Duration {
	return min(r.cfg.WriteTimeout, 500*time.Millisecond)
}

// initSeq starts the sequence above everything this instance may have
// written: the wall clock in nanoseconds normally, the applied high-water
// mark or the spool's last batch if the clock went back. The high-water read
// is the one Store call the flusher makes before serving Record, so it is
// bounded by probeTimeout, not WriteTimeout: with Redis down at start it
// costs one short probe. If it fails, the sequence stays on the clock (as
// it must: Record is not held back for Redis); each replay probe reads the
// mark again and raises the sequence for later batches (finishReplay).
func (r *Recorder) initSeq(ctx context.Context) {
	r.seq = uint64(time.Now().UnixNano())
	if r.spool != nil && r.spool.lastSeq > r.seq {
		r.seq = r.spool.lastSeq
	}
	hctx, cancel := context.WithTimeout(ctx, r.probeTimeout())
	defer cancel()
	hw, err := r.store.HighWater(hctx, r.cfg.Instance)
	if err != nil {
		r.log.Warn("read applied high-water mark", zap.Error(err))
		return
	}
	r.raiseSeq(hw)
}

// raiseSeq continues the sequence above the applied high-water mark hw.
func (r *Recorder) raiseSeq(hw uint64) {
	if hw > r.seq {
		r.log.Warn("clock is behind the applied sequence; continuing above it", zap.Uint64("high_water", hw))
		r.seq = hw
	}
}

func (r *Recorder) nextSeq() uint64 {
	r.seq++
	return r.seq
}

// collect adds queued requests to r.reqs until MaxBatch or MaxDelay. With
// MaxDelay 0 it takes only what is queued already: the shares that arrived
// while the previous write was in flight. A share that found a block closes
// its batch, so no share of the batch comes after it: the block's PPLNS
// window ends exactly at it (the store merges an address's shares of one
// batch into one window entry).
func (r *Recorder) collect(ctx context.Context, timer *time.Timer) {
	if n := len(r.reqs); n > 0 && r.reqs[n-1].entry.Share.Block {
		return
	}
	if r.cfg.MaxDelay == 0 {
		for len(r.reqs) < r.cfg.MaxBatch {
			select {
			case req := <-r.queue:
				r.reqs = append(r.reqs, req)
				if req.entry.Share.Block {
					return
				}
			default:
				return
			}
		}
		return
	}
	timer.Reset(r.cfg.MaxDelay)
	defer timer.Stop()
	for len(r.reqs) < r.cfg.MaxBatch {
		select {
		case req := <-r.queue:
			r.reqs = append(r.reqs, req)
			if req.entry.Share.Block {
				return
			}
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// buildBatch fills r.batch from r.reqs and the pending rejects.
func (r *Recorder) buildBatch() *Batch {
	b := &r.batch
	b.Instance = r.cfg.Instance
	b.Shares = b.Shares[:0]
	b.Rejects = b.Rejects[:0]
	for _, req := range r.reqs {
		req.entry.Seq = r.nextSeq()
		b.Shares = append(b.Shares, req.entry)
	}
	if r.cfg.StatsInterval > 0 {
		b.Kind = BatchAccounting // statistics and rejects: flushStats
	} else {
		b.Kind = BatchFull
		b.Rejects = r.takeRejects(b.Rejects)
	}
	b.Seq = r.nextSeq()
	return b
}

// commit makes one batch durable and answers its Record calls.
func (r *Recorder) commit(ctx context.Context) {
	b := r.buildBatch()
	if len(b.Shares) == 0 && len(b.Rejects) == 0 {
		return
	}
	err := r.persist(ctx, b)
	if err != nil {
		r.failed.Add(uint64(len(r.reqs)))
		r.log.Error("shares not durable", zap.Int("shares", len(b.Shares)), zap.Error(err))
	} else {
		r.sharesN.Add(uint64(len(r.reqs)))
		if b.Kind == BatchAccounting {
			r.statsShares = append(r.statsShares, b.Shares...)
			r.armStats()
			if len(r.statsShares) >= maxStatsShares {
				r.flushStats(ctx)
			}
		}
	}
	// Last to first: see Done.
	for i := len(r.reqs) - 1; i >= 0; i-- {
		req := r.reqs[i]
		r.reqs[i] = nil
		done, token, seq := req.done, req.token, req.entry.Seq
		r.release(req)
		if sd, ok := done.(SeqDone); ok {
			sd.ShareDoneSeq(token, seq, err)
		} else {
			done.ShareDone(token, err)
		}
	}
	r.reqs = r.reqs[:0]
}

// persist writes b to the Store, or to the spool if the spool is not empty
// (order) or the Store fails.
func (r *Recorder) persist(ctx context.Context, b *Batch) error {
	if r.spool != nil && r.spool.pending() {
		return r.toSpool(b, nil)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.WriteTimeout)
	err := r.store.ApplyBatch(wctx, b, r.trimLimit())
	cancel()
	if err == nil {
		r.batches.Add(1)
		return nil
	}
	if r.spool == nil {
		return fmt.Errorf("%w: store: %w", ErrNotDurable, err)
	}
	r.log.Warn("store write failed; spooling", zap.Error(err))
	r.catchingUp = false // an outage begins: replay runs beside the flusher
	r.nextReplay = time.Now().Add(r.cfg.RetryInterval)
	return r.toSpool(b, err)
}

func (r *Recorder) toSpool(b *Batch, storeErr error) error {
	if err := r.spool.append(b); err != nil {
		if storeErr != nil {
			return fmt.Errorf("%w: store: %v; %w", ErrNotDurable, storeErr, err)
		}
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	r.spooled.Add(1)
	r.noteSpool()
	return nil
}

func (r *Recorder) noteSpool() {
	if r.spool == nil {
		return
	}
	r.spoolPending.Store(r.spool.pending())
	r.spoolBytes.Store(r.spool.size)
}

// replayItem is one spooled batch and the spool offset just after it.
type replayItem struct {
	b    *Batch
	next int64
}

// replayResult is the outcome of one replay attempt.
type replayResult struct {
	items   []replayItem
	applied int    // items[:applied] were acknowledged by the Store
	hw      uint64 // the high-water mark the probe read (0 if it failed)
	err     error
}

// Why replay runs beside the flusher: while Redis is down every Store call
// takes its whole timeout (the client redials until the deadline). If the
// flusher made those calls itself, every batch arriving during an attempt
// would wait for it, and miners would be answered seconds late although the
// spool could make their shares durable at once. So the flusher only reads
// the spool and hands a chunk to one goroutine that probes the Store and
// applies the chunk; meanwhile the flusher keeps appending new batches to the
// spool. This keeps the rules of a single flusher:
//   - the flusher stays the only goroutine that touches the spool (append,
//     read, clear); the attempt gets decoded batches, not the file;
//   - at most one attempt is in flight, and no live Store write happens while
//     the spool is non-empty, so batches reach the Store in sequence order;
//   - the spool is removed only by the flusher when the replay offset has
//     reached the end of the spool, so a batch appended during an attempt is
//     replayed by the next one, never lost.

// startReplay starts a replay attempt of the next spooled batches if the
// spool is non-empty, none is in flight and the retry pause has passed.
func (r *Recorder) startReplay(ctx context.Context) {
	if r.spool == nil || !r.spool.pending() || r.replaying || time.Now().Before(r.nextReplay) {
		return
	}
	items, err := r.readChunk()
	if err != nil {
		// Records before the end were fsynced and checked at open; a read
		// error here is an I/O fault. Retry later.
		r.log.Error("read spool", zap.Error(err))
		r.nextReplay = time.Now().Add(r.cfg.RetryInterval)
		return
	}
	if len(items) == 0 {
		r.clearSpool()
		return
	}
	r.replaying = true
	go func() { r.replayDone <- r.replay(ctx, items) }()
}

// readChunk reads up to replayChunk spooled batches from the replay offset.
func (r *Recorder) readChunk() ([]replayItem, error) {
	var items []replayItem
	off := r.replayOff
	for range replayChunk {
		b, next, err := r.spool.read(off)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if len(items) > 0 {
				break // replay what was read; the error comes back next time
			}
			return nil, err
		}
		items = append(items, replayItem{b: b, next: next})
		off = next
	}
	return items, nil
}

// replay is one replay attempt; it touches the Store only, never the spool or
// the flusher's state, so it may run on its own goroutine. It probes with a
// short high-water read first, so an attempt while Redis is still down costs
// probeTimeout, then applies the batches in order, stopping at the first
// error. Cancelling ctx (shutdown) abandons the attempt; a batch whose outcome
// is unknown is replayed again later and applied once (idempotent Store).
func (r *Recorder) replay(ctx context.Context, items []replayItem) replayResult {
	res := replayResult{items: items}
	pctx, cancel := context.WithTimeout(ctx, r.probeTimeout())
	hw, err := r.store.HighWater(pctx, r.cfg.Instance)
	cancel()
	if err != nil {
		res.err = fmt.Errorf("probe store: %w", err)
		return res
	}
	res.hw = hw
	limit := r.trimLimit()
	for _, it := range items {
		wctx, cancel := context.WithTimeout(ctx, r.cfg.WriteTimeout)
		err := r.store.ApplyBatch(wctx, it.b, limit)
		cancel()
		if err != nil {
			res.err = err
			return res
		}
		res.applied++
	}
	return res
}

// finishReplay takes the outcome of a replay attempt on the flusher: it
// advances the replay offset past the applied batches and removes the spool
// once everything in it was applied.
func (r *Recorder) finishReplay(res replayResult) {
	r.replaying = false
	r.raiseSeq(res.hw)
	if res.applied > 0 {
		r.replayOff = res.items[res.applied-1].next
		r.batches.Add(uint64(res.applied))
		r.replayed.Add(uint64(res.applied))
	}
	r.catchingUp = res.err == nil
	if res.err != nil {
		r.replayFailures++
		if r.replayFailures == 1 || r.replayFailures%100 == 0 {
			r.log.Warn("spool replay failed; retrying", zap.Int("attempts", r.replayFailures),
				zap.Int64("offset", r.replayOff), zap.Error(res.err))
		}
		r.nextReplay = time.Now().Add(r.cfg.RetryInterval)
		return
	}
	r.replayFailures = 0
	if r.replayOff >= r.spool.size {
		// Nothing was appended after the chunk: the spool is fully applied.
		r.clearSpool()
	}
}

// clearSpool removes the fully replayed spool.
func (r *Recorder) clearSpool() {
	if err := r.spool.clear(); err != nil {
		r.log.Error("remove replayed spool", zap.Error(err))
		r.nextReplay = time.Now().Add(r.cfg.RetryInterval)
	} else {
		r.log.Info("spool replayed and removed", zap.Uint64("replayed_batches", r.replayed.Load()))
	}
	r.replayOff = 0
	r.catchingUp = false
	r.noteSpool()
}

// shutdown flushes what is queued, tries the spool once more, and closes it.
// Here the flusher may wait for the Store: no new Record is accepted.
func (r *Recorder) shutdown(ctx context.Context) {
	r.running.Store(false)
	r.stopping.Store(true)
	if r.replaying {
		// The attempt runs under ctx, which has ended: it returns promptly.
		r.finishReplay(<-r.replayDone)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ShutdownTimeout)
	defer cancel()
	for {
		r.reqs = r.reqs[:0]
	fill:
		for len(r.reqs) < r.cfg.MaxBatch {
			select {
			case req := <-r.queue:
				r.reqs = append(r.reqs, req)
				if req.entry.Share.Block {
					break fill // a block share closes its batch (see collect)
				}
			default:
				break fill
			}
		}
		if len(r.reqs) == 0 {
			if r.senders.Load() == 0 {
				// Every sender that passed the stopping check has
				// queued its share (and it was taken) or given up.
				break
			}
			time.Sleep(50 * time.Microsecond)
			continue
		}
		r.commit(sctx)
	}
	if r.cfg.StatsInterval > 0 {
		r.flushStats(sctx)
	} else {
		r.rejMu.Lock()
		hasRejects := len(r.rejects) > 0
		r.rejMu.Unlock()
		if hasRejects {
			r.reqs = r.reqs[:0]
			r.commit(sctx)
		}
	}
	for r.spool != nil && r.spool.pending() && sctx.Err() == nil {
		items, err := r.readChunk()
		if err != nil {
			r.log.Error("read spool", zap.Error(err))
			break
		}
		if len(items) == 0 {
			r.clearSpool()
			break
		}
		res := r.replay(sctx, items)
		r.finishReplay(res)
		if res.err != nil {
			break // the Store still fails; the spool waits for the next start
		}
	}
	if r.spool != nil {
		r.spool.close()
	}
}

// BatchWait returns the group-commit wait in use (Config.MaxDelay after
// defaults).
func (r *Recorder) BatchWait() time.Duration { return r.cfg.MaxDelay }

// Queued returns how many shares wait in the queue for a batch.
func (r *Recorder) Queued() int { return len(r.queue) }
