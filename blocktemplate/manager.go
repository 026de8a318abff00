package blocktemplate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/go-zeromq/zmq4"
	"go.uber.org/zap"
)

// Defaults for ManagerConfig fields left zero.
const (
	DefaultPollInterval    = time.Second
	DefaultRefreshInterval = 30 * time.Second
	DefaultMaxJobs         = 8
	DefaultRetryMin        = 500 * time.Millisecond
	DefaultRetryMax        = 30 * time.Second
	// DefaultSubscriberQueue is how many jobs a subscriber may fall behind
	// before its queue is collapsed to the newest job.
	DefaultSubscriberQueue = 64
)

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Source is the node; required.
	Source TemplateSource
	// Builder turns templates into jobs; required.
	Builder *Builder
	// PollInterval is how often getbestblockhash is polled to notice a new
	// tip (default 1 s; negative disables polling, e.g. when ZMQ or long
	// poll is trusted alone).
	PollInterval time.Duration
	// RefreshInterval is how often a job with clean_jobs=false is issued for
	// the same tip to pick up new transactions (default 30 s; negative
	// disables).
	RefreshInterval time.Duration
	// LongPoll enables getblocktemplate long polling (btcd and Core).
	LongPoll bool
	// ZMQAddress, e.g. tcp://127.0.0.1:28332, subscribes to Bitcoin Core's
	// hashblock notifications. Optional.
	ZMQAddress string
	// MaxJobs is how many jobs of the current tip stay valid for shares
	// (default 8). Jobs of an older tip are always stale.
	MaxJobs int
	// RetryMin and RetryMax bound the backoff after a failed template fetch
	// (defaults 500 ms and 30 s).
	RetryMin, RetryMax time.Duration
	// SubscriberQueue bounds each subscriber's backlog (default 64).
	SubscriberQueue int
	// Commitments, when set, gives the output script each new job's
	// coinbase carries (the PPLNS window commitment). Asked once per job,
	// bounded by CommitmentTimeout (default 500 ms); a failure or timeout
	// builds the job without it (the windows stay pending for the next
	// block) and is logged.
	Commitments       CommitmentSource
	CommitmentTimeout time.Duration
	// Logger; nil logs nothing.
	Logger *zap.Logger
}

// CommitmentSource gives the commitment output script of the next coinbase
// (nil or empty: none). internal/redisstore implements it with the roots
// of the pool's windows not yet committed.
type CommitmentSource interface {
	CommitmentScript(ctx context.Context) ([]byte, error)
}

// DefaultCommitmentTimeout bounds one CommitmentSource call.
const DefaultCommitmentTimeout = 500 * time.Millisecond

func (c ManagerConfig) withDefaults() ManagerConfig {
	if c.CommitmentTimeout == 0 {
		c.CommitmentTimeout = DefaultCommitmentTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.MaxJobs == 0 {
		c.MaxJobs = DefaultMaxJobs
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.SubscriberQueue == 0 {
		c.SubscriberQueue = DefaultSubscriberQueue
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Validate checks c after defaults are applied.
func (c ManagerConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Source == nil:
		return errors.New("manager: source is required")
	case c.Builder == nil:
		return errors.New("manager: builder is required")
	case c.MaxJobs < 1:
		return fmt.Errorf("manager: max jobs %d: want ≥ 1", c.MaxJobs)
	case c.RetryMin < 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("manager: retry bounds %v..%v", c.RetryMin, c.RetryMax)
	case c.SubscriberQueue < 1:
		return fmt.Errorf("manager: subscriber queue %d: want ≥ 1", c.SubscriberQueue)
	}
	return nil
}

// jobSet is an immutable snapshot of the valid jobs: all of the current tip,
// newest last. Readers load it atomically and never lock.
type jobSet struct {
	current *Job
	byID    map[string]*Job
	order   []*Job // oldest first
}

// trigger kinds: why a template is fetched.
type triggerKind int

const (
	triggerRefresh triggerKind = iota // same tip expected: clean=false
	triggerTip                        // the tip changed (poll, ZMQ, own block)
)

type request struct {
	kind   triggerKind
	seenAt time.Time
	reply  chan error // nil for fire-and-forget
}

// Manager owns the current template and publishes immutable Jobs. Run
// drives it; the other methods are safe from any goroutine.
//
// A new tip is noticed by getblocktemplate long poll (LongPoll), Core's ZMQ
// hashblock (ZMQAddress), and getbestblockhash polling (the fallback). A new
// tip gives a job with CleanJobs=true and makes every older job stale, once:
// whichever notice comes first publishes it, and the later notices of the
// same block (including the long poll that was waiting on the old tip) add
// nothing. A refresh (RefreshInterval, Refresh, or a long poll sent on the
// current tip that returns for new transactions) gives CleanJobs=false and
// keeps up to MaxJobs jobs of the tip valid.
// A failed fetch keeps the last good job and is retried with backoff.
type Manager struct {
	cfg ManagerConfig
	log *zap.Logger

	state    atomic.Pointer[jobSet]
	requests chan request
	lpResult chan lpTemplate

	subsMu sync.Mutex
	subs   map[*subscriber]struct{}

	started atomic.Bool
	done    chan struct{} // closed when Run returns
	// droppedJobs counts jobs a slow subscriber never saw (its backlog was
	// collapsed); exported for metrics.
	droppedJobs atomic.Uint64
}

type lpTemplate struct {
	t      *Template
	seenAt time.Time
	// sentOn is the tip (prevhash) of the template whose longpollid the
	// long poll sent: a template on another tip answers a tip change.
	sentOn chainhash.Hash
}

// NewManager checks cfg and returns a Manager; call Run to start it.
func NewManager(cfg ManagerConfig) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Manager{
		cfg:      cfg,
		log:      cfg.Logger,
		requests: make(chan request, 16),
		lpResult: make(chan lpTemplate),
		subs:     map[*subscriber]struct{}{},
		done:     make(chan struct{}),
	}, nil
}

// Current returns the newest job, or nil before the first template.
func (m *Manager) Current() *Job {
	if s := m.state.Load(); s != nil {
		return s.current
	}
	return nil
}

// Lookup returns the job with the given id if it is still valid: ok is
// false for an unknown id and for jobs of an older tip (stale) or evicted
// beyond MaxJobs. It takes no lock.
func (m *Manager) Lookup(id string) (job *Job, ok bool) {
	s := m.state.Load()
	if s == nil {
		return nil, false
	}
	job, ok = s.byID[id]
	return job, ok
}

// DroppedJobs returns how many jobs slow subscribers missed.
func (m *Manager) DroppedJobs() uint64 { return m.droppedJobs.Load() }

// NewBlockFound asks for a new template at once, as after the pool's own
// block was accepted: the node already has the new tip, so the next job
// need not wait for its notice. It returns when the job is published or the
// fetch failed (the Manager then retries on its own).
func (m *Manager) NewBlockFound(ctx context.Context) error {
	return m.ask(ctx, triggerTip)
}

// Refresh asks for a new template at once and publishes it (CleanJobs is
// true only if the tip changed). It returns like NewBlockFound.
func (m *Manager) Refresh(ctx context.Context) error {
	return m.ask(ctx, triggerRefresh)
}

func (m *Manager) ask(ctx context.Context, kind triggerKind) error {
	if !m.started.Load() {
		return errNotRunning
	}
	reply := make(chan error, 1)
	select {
	case m.requests <- request{kind: kind, seenAt: time.Now(), reply: reply}:
	case <-m.done:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-m.done:
		return errNotRunning
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errNotRunning = errors.New("template manager is not running")

// signal queues a request without waiting; a full queue already holds a
// request that will fetch a fresh template.
func (m *Manager) signal(kind triggerKind, seenAt time.Time) {
	select {
	case m.requests <- request{kind: kind, seenAt: seenAt}:
	default:
	}
}

// Run fetches templates and publishes jobs until ctx is done, then returns
// nil. It starts the poll, long-poll and ZMQ loops as configured and waits
// for them before returning. Run may be called once.
func (m *Manager) Run(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("template manager: Run called twice")
	}
	defer close(m.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := func(name string, loop func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
			m.log.Debug("template loop stopped", zap.String("loop", name))
		}()
	}
	if m.cfg.PollInterval > 0 {
		start("poll", m.pollLoop)
	}
	if m.cfg.LongPoll {
		start("longpoll", m.longPollLoop)
	}
	if m.cfg.ZMQAddress != "" {
		start("zmq", m.zmqLoop)
	}
	m.updateLoop(ctx)
	cancel()
	wg.Wait()
	return nil
}

// updateLoop is the only goroutine that fetches templates (outside long
// polls) and publishes jobs. It must be run as a goroutine owned by Run.
func (m *Manager) updateLoop(ctx context.Context) {
	var (
		refresh  <-chan time.Time
		refreshT *time.Timer
		retry    <-chan time.Time
		backoff  = m.cfg.RetryMin
		// pending is the request that failed and is retried: a tip request
		// keeps its seenAt so latency is measured from the real event.
		pending = &request{kind: triggerTip, seenAt: time.Now()}
	)
	resetRefresh := func() {
		if m.cfg.RefreshInterval <= 0 {
			return
		}
		if refreshT == nil {
			refreshT = time.NewTimer(m.cfg.RefreshInterval)
		} else {
			refreshT.Reset(m.cfg.RefreshInterval)
		}
		refresh = refreshT.C
	}
	defer func() {
		if refreshT != nil {
			refreshT.Stop()
		}
	}()
	handle := func(req request) {
		err := m.fetchAndPublish(ctx, req.kind, req.seenAt)
		if req.reply != nil {
			req.reply <- err
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("block template fetch failed; keeping the last job", zap.Error(err), zap.Duration("retry_in", backoff))
			// Keep the more urgent of the pending and the failed request.
			if pending == nil || req.kind == triggerTip && pending.kind != triggerTip {
				r := req
				r.reply = nil
				pending = &r
			}
			retry = time.After(backoff)
			backoff = min(2*backoff, m.cfg.RetryMax)
			return
		}
		pending, retry, backoff = nil, nil, m.cfg.RetryMin
		resetRefresh()
	}
	// merge folds a failed tip request into the next one, so its job is
	// still clean-on-same-tip aware and timed from the first notice.
	merge := func(req request) request {
		if pending != nil && pending.kind == triggerTip && req.kind != triggerTip {
			req.kind, req.seenAt = triggerTip, pending.seenAt
		}
		return req
	}
	handle(*pending)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-m.requests:
			handle(merge(req))
		case <-retry:
			handle(*pending)
		case <-refresh:
			refresh = nil
			handle(merge(request{kind: triggerRefresh, seenAt: time.Now()}))
		case lp := <-m.lpResult:
			if !lpIsNews(m.Current(), lp) {
				m.log.Debug("long poll brought nothing new", zap.Stringer("prev_hash", &lp.t.PrevHash), zap.Int64("height", lp.t.Height))
				continue
			}
			if err := m.publish(lp.t, triggerRefresh, lp.seenAt); err != nil {
				m.log.Warn("long-poll template rejected", zap.Error(err))
				continue
			}
			pending, retry, backoff = nil, nil, m.cfg.RetryMin
			resetRefresh()
		}
	}
}

// lpIsNews tells whether a long poll's template should be published given
// the current job. A long poll sent on the current tip reports a change
// against it: a new tip, or new transactions (a refresh). One sent on an
// older tip returns because that tip changed, and the current job shows
// another notice (ZMQ, the poll, NewBlockFound) already brought a change:
// the same tip again would be a second job for one block, and a tip no
// higher than the current one is older news that would take miners back
// (a real reorganisation to it is still seen by the poll). Only a higher
// tip is news.
func lpIsNews(cur *Job, lp lpTemplate) bool {
	switch {
	case cur == nil || lp.sentOn == cur.PrevHash:
		return true
	case lp.t.PrevHash == cur.PrevHash:
		return false
	default:
		return lp.t.Height > cur.Height
	}
}

// fetchAndPublish gets a template and publishes its job.
func (m *Manager) fetchAndPublish(ctx context.Context, kind triggerKind, seenAt time.Time) error {
	raw, err := m.cfg.Source.GetBlockTemplate(ctx, "")
	if err != nil {
		return fmt.Errorf("get block template: %w", err)
	}
	t, err := ParseTemplate(raw)
	if err != nil {
		return fmt.Errorf("parse block template: %w", err)
	}
	return m.publish(t, kind, seenAt)
}

// publish builds the job for t and installs it. A new prevhash makes a clean
// job and drops every older job; the same prevhash adds a job, unless the
// request was a tip notice (the node has not moved yet: nothing to do).
func (m *Manager) publish(t *Template, kind triggerKind, seenAt time.Time) error {
	old := m.state.Load()
	newTip := old == nil || old.current.PrevHash != t.PrevHash
	if !newTip && kind == triggerTip {
		return nil
	}
	job, err := m.cfg.Builder.JobWithCommitment(t, newTip, m.commitment())
	if err != nil {
		return fmt.Errorf("build job: %w", err)
	}
	next := &jobSet{current: job}
	if newTip {
		job.TipSeenAt = seenAt
		next.order = []*Job{job}
	} else {
		job.TipSeenAt = old.current.TipSeenAt
		keep := old.order
		if len(keep) >= m.cfg.MaxJobs {
			keep = keep[len(keep)-m.cfg.MaxJobs+1:]
		}
		next.order = append(append(make([]*Job, 0, len(keep)+1), keep...), job)
	}
	next.byID = make(map[string]*Job, len(next.order))
	for _, j := range next.order {
		next.byID[j.ID] = j
	}
	m.state.Store(next)
	m.log.Info("new job",
		zap.String("job_id", job.ID), zap.Int64("height", job.Height),
		zap.Stringer("prev_hash", &job.PrevHash), zap.Bool("clean_jobs", job.CleanJobs),
		zap.Int("transactions", len(t.Transactions)), zap.Int64("coinbase_value", t.CoinbaseValue))
	m.broadcast(job)
	return nil
}

// commitment asks the CommitmentSource for the next coinbase's commitment
// output; nil when there is none or it cannot be had in time.
func (m *Manager) commitment() []byte {
	if m.cfg.Commitments == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.CommitmentTimeout)
	defer cancel()
	script, err := m.cfg.Commitments.CommitmentScript(ctx)
	if err != nil {
		m.log.Warn("window commitment left out of this job", zap.Error(err))
		return nil
	}
	if len(script) > 0 && (script[0] != 0x6a || len(script) > MaxCommitmentScript) {
		m.log.Error("window commitment is not an OP_RETURN output; left out", zap.Int("bytes", len(script)))
		return nil
	}
	return script
}

// pollLoop polls getbestblockhash and signals a tip change. It must be run
// as a goroutine owned by Run.
func (m *Manager) pollLoop(ctx context.Context) {
	tick := time.NewTicker(m.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := m.Current()
		if cur == nil {
			continue
		}
		best, err := m.cfg.Source.GetBestBlockHash(ctx)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Debug("getbestblockhash failed", zap.Error(err))
			}
			continue
		}
		if best != cur.PrevHash {
			m.log.Debug("new tip by poll", zap.Stringer("hash", &best))
			m.signal(triggerTip, time.Now())
		}
	}
}

// minLongPollSpacing is the least time between the starts of two long
// polls, so a node that answers every long poll at once cannot make the
// Manager spin.
const minLongPollSpacing = 250 * time.Millisecond

// longPollLoop keeps one getblocktemplate long poll open and hands each
// template it returns to updateLoop. It must be run as a goroutine owned by
// Run.
func (m *Manager) longPollLoop(ctx context.Context) {
	backoff := m.cfg.RetryMin
	var (
		lpid   string
		lpPrev chainhash.Hash // the tip of the template lpid belongs to
	)
	for ctx.Err() == nil {
		if lpid == "" {
			if cur := m.Current(); cur != nil && cur.Template != nil {
				lpid, lpPrev = cur.Template.LongPollID, cur.Template.PrevHash
			}
			if lpid == "" {
				if !sleep(ctx, m.cfg.RetryMin) {
					return
				}
				continue
			}
		}
		started := time.Now()
		raw, err := m.cfg.Source.GetBlockTemplate(ctx, lpid)
		seenAt := time.Now()
		if err == nil {
			var t *Template
			if t, err = ParseTemplate(raw); err == nil {
				if t.LongPollID == lpid {
					// A node that answers at once with the id we sent does
					// not hold long polls; polling remains.
					m.log.Warn("node ignores longpollid; long polling disabled", zap.String("longpollid", lpid))
					return
				}
				sentOn := lpPrev
				lpid, lpPrev = t.LongPollID, t.PrevHash
				backoff = m.cfg.RetryMin
				select {
				case m.lpResult <- lpTemplate{t: t, seenAt: seenAt, sentOn: sentOn}:
				case <-ctx.Done():
					return
				}
				// Never spin: space long polls that return quickly.
				if !sleep(ctx, minLongPollSpacing-time.Since(started)) {
					return
				}
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		m.log.Debug("long poll failed", zap.Error(err), zap.Duration("retry_in", backoff))
		lpid = "" // take the current one after the pause
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, m.cfg.RetryMax)
	}
}

// zmqLoop subscribes to Core's hashblock topic and signals a tip change for
// each message, reconnecting with backoff. It must be run as a goroutine
// owned by Run.
func (m *Manager) zmqLoop(ctx context.Context) {
	backoff := m.cfg.RetryMin
	for ctx.Err() == nil {
		subscribed, err := m.zmqSession(ctx)
		if ctx.Err() != nil {
			return
		}
		if subscribed {
			backoff = m.cfg.RetryMin
		}
		m.log.Warn("zmq hashblock subscription failed", zap.String("address", m.cfg.ZMQAddress), zap.Error(err), zap.Duration("retry_in", backoff))
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, m.cfg.RetryMax)
	}
}

// zmqSession subscribes once and relays messages until the connection
// fails; subscribed tells whether it got that far.
func (m *Manager) zmqSession(ctx context.Context) (subscribed bool, err error) {
	sub := zmq4.NewSub(ctx, zmq4.WithLogger(log.New(io.Discard, "", 0)), zmq4.WithDialerRetry(m.cfg.RetryMin))
	defer sub.Close()
	if err := sub.Dial(m.cfg.ZMQAddress); err != nil {
		return false, fmt.Errorf("dial: %w", err)
	}
	if err := sub.SetOption(zmq4.OptionSubscribe, "hashblock"); err != nil {
		return false, fmt.Errorf("subscribe: %w", err)
	}
	m.log.Info("zmq hashblock subscribed", zap.String("address", m.cfg.ZMQAddress))
	for {
		msg, err := sub.Recv()
		if err != nil {
			return true, fmt.Errorf("recv: %w", err)
		}
		if len(msg.Frames) < 2 || string(msg.Frames[0]) != "hashblock" {
			continue
		}
		seenAt := time.Now()
		if len(msg.Frames[1]) == chainhash.HashSize {
			// Core sends the hash in display order.
			var h chainhash.Hash
			for i := range h {
				h[i] = msg.Frames[1][chainhash.HashSize-1-i]
			}
			if cur := m.Current(); cur != nil && cur.PrevHash == h {
				continue
			}
			m.log.Debug("new tip by zmq", zap.Stringer("hash", &h))
		}
		m.signal(triggerTip, seenAt)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
