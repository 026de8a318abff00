package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Runner.
type Config struct {
	// Address is the pool's host:port.
	Address string
	// Username and Password are sent in mining.authorize (Password default
	// "x"); Username is also the worker name in every submit.
	Username string
	Password string
	// WorkerPerConn appends each connection's index to Username
	// ("addr.w" → "addr.w0", "addr.w1", …), so every connection is its
	// own worker, as at a real pool (per-worker statistics cost).
	WorkerPerConn bool
	// UserAgent is the subscribe user agent (default "lode-bench/1.0").
	UserAgent string
	// Conns is the number of connections (default 1).
	Conns int
	// VersionRolling negotiates BIP310 version rolling and rolls bits.
	VersionRolling bool
	// SuggestDifficulty, when > 0, is sent as mining.suggest_difficulty.
	SuggestDifficulty float64
	// SourceIPs, when set, are the local addresses connections dial from,
	// round robin (e.g. 127.0.0.2, 127.0.0.3 for more than ~28k loopback
	// connections to one port).
	SourceIPs []string
	// DialConcurrency bounds handshakes in flight while connecting
	// (default 64).
	DialConcurrency int
	// Timeout bounds a dial, the handshake and each submit's reply
	// (default 30 s).
	Timeout time.Duration
	// Idle connects and handshakes but never submits (memory measurement).
	Idle bool
	// Raw connects without any handshake and only reads lines: the clients
	// of the fan-out floor (FloorServer).
	Raw bool
	// Interval paces each connection to one submit per interval, at a
	// random phase per connection (0: submit as soon as the next share is
	// found and the previous reply arrived).
	Interval time.Duration
	// SharesPerConn, when > 0, stops a connection after that many submits
	// (benchmarks submit a fixed amount of work).
	SharesPerConn int
	// Reconnect redials a connection that failed (after 1 s) instead of
	// giving it up; used when running until interrupted.
	Reconnect bool
	// Pipeline, when > 1, keeps up to that many submits in flight per
	// connection (a farm proxy or a fast miner; Lode answers them in
	// order); 0 or 1: one submit in flight, like a single miner.
	Pipeline int
	// ReadBuffer is each connection's read buffer (default 4096; longer
	// lines are still read whole).
	ReadBuffer int
	// Logf, when set, receives connection errors (rate-limited by the
	// caller's choice of sink).
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Password == "" {
		c.Password = "x"
	}
	if c.UserAgent == "" {
		c.UserAgent = "lode-bench/1.0"
	}
	if c.Conns <= 0 {
		c.Conns = 1
	}
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = 64
	}
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 4096
	}
	return c
}

// Runner drives the connections of one load run.
type Runner struct {
	cfg Config

	latency        Histogram
	accepted       atomic.Int64
	rejected       atomic.Int64
	submitted      atomic.Int64
	timeouts       atomic.Int64
	protocolErrors atomic.Int64
	connErrors     atomic.Int64
	jobs           atomic.Int64
	maskChanges    atomic.Int64
	byCode         [128]atomic.Int64 // rejections by code; index 0 holds codes outside 1..127

	fan fanTracker

	mu    sync.Mutex
	conns []*conn
	live  atomic.Int64
}

// New returns a Runner; nothing is dialed until Connect.
func New(cfg Config) (*Runner, error) {
	cfg = cfg.withDefaults()
	if cfg.Address == "" {
		return nil, errors.New("load config: no pool address")
	}
	if cfg.Username == "" && !cfg.Raw {
		return nil, errors.New("load config: no username")
	}
	return &Runner{cfg: cfg}, nil
}

func (r *Runner) countRejection(code int) {
	if code < 1 || code >= len(r.byCode) {
		code = 0
	}
	r.byCode[code].Add(1)
}

func (r *Runner) logf(format string, args ...any) {
	if r.cfg.Logf != nil {
		r.cfg.Logf(format, args...)
	}
}

// Connect dials and handshakes every connection, DialConcurrency at a
// time. Failed connections are counted and logged; it returns an error only
// when none connected or ctx ended.
func (r *Runner) Connect(ctx context.Context) error {
	sem := make(chan struct{}, r.cfg.DialConcurrency)
	var wg sync.WaitGroup
	conns := make([]*conn, r.cfg.Conns)
	for i := range conns {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			r.adopt(conns)
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := r.dial(ctx, i)
			if err != nil {
				r.connErrors.Add(1)
				r.logf("connection %d: %v", i, err)
				return
			}
			conns[i] = c
		}()
	}
	wg.Wait()
	n := r.adopt(conns)
	if n == 0 {
		return fmt.Errorf("no connection to %s succeeded (%d failed)", r.cfg.Address, r.connErrors.Load())
	}
	return ctx.Err()
}

func (r *Runner) adopt(conns []*conn) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range conns {
		if c != nil {
			r.conns = append(r.conns, c)
		}
	}
	r.live.Store(int64(len(r.conns)))
	return len(r.conns)
}

// Live returns the number of connected connections.
func (r *Runner) Live() int { return int(r.live.Load()) }

func (r *Runner) snapshotConns() []*conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.conns)
}

// WaitJobs waits until every connection has received a job (at once for
// Raw connections, which get nothing before the first broadcast).
func (r *Runner) WaitJobs(ctx context.Context) error {
	if r.cfg.Raw {
		return nil
	}
	for _, c := range r.snapshotConns() {
		if _, err := c.waitJob(ctx); err != nil {
			return err
		}
	}
	return nil
}

// PreMine stocks n shares per connection for its current job, using every
// CPU, so that a following Mine measures the pool rather than the client's
// hashing. Stocked shares are dropped when the job or difficulty changes.
// It must not run while Mine does (both use each connection's worker).
func (r *Runner) PreMine(ctx context.Context, n, workers int) error {
	conns := r.snapshotConns()
	if workers < 1 {
		workers = 1
	}
	next := atomic.Int64{}
	errs := make(chan error, workers)
	for range workers {
		go func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					errs <- nil
					return
				}
				if err := conns[i].preMine(ctx, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Mine runs every connection's mine-submit loop until ctx ends (or, for
// Idle, just holds the connections). Connections that fail are redialed
// when Reconnect is set.
func (r *Runner) Mine(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range r.snapshotConns() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.runConn(ctx, c)
		}()
	}
	wg.Wait()
}

func (r *Runner) runConn(ctx context.Context, c *conn) {
	for {
		var err error
		if r.cfg.Idle || r.cfg.Raw {
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-c.done:
				err = fmt.Errorf("connection closed: %w", c.err)
			}
		} else {
			err = c.mine(ctx)
		}
		if err == nil || ctx.Err() != nil {
			return
		}
		r.connErrors.Add(1)
		r.live.Add(-1)
		r.logf("connection %d: %v", c.idx, err)
		c.close()
		if !r.cfg.Reconnect {
			return
		}
		for {
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			nc, err := r.dial(ctx, c.idx)
			if err == nil {
				r.mu.Lock()
				if i := slices.Index(r.conns, c); i >= 0 {
					r.conns[i] = nc
				}
				r.mu.Unlock()
				r.live.Add(1)
				c = nc
				break
			}
			r.connErrors.Add(1)
			r.logf("reconnect %d: %v", c.idx, err)
		}
	}
}

// Close closes every connection.
func (r *Runner) Close() {
	for _, c := range r.snapshotConns() {
		c.close()
	}
	r.live.Store(0)
}

// MarkBlock records t as the time of the block event whose clean job is
// expected next: the next new prevhash the connections see is measured from
// t rather than from its first receipt.
func (r *Runner) MarkBlock(t time.Time) { r.fan.mark(t) }

// Snapshot is a point-in-time copy of a Runner's counters.
type Snapshot struct {
	Time           time.Time
	Live           int
	Submitted      int64
	Accepted       int64
	Rejected       int64
	Timeouts       int64
	ProtocolErrors int64
	ConnErrors     int64
	Jobs           int64
	RejectedByCode map[int]int64 // code 0: codes outside 1..127
	Latency        HistSnapshot
}

// Snapshot copies the counters.
func (r *Runner) Snapshot() Snapshot {
	s := Snapshot{
		Time:           time.Now(),
		Live:           r.Live(),
		Submitted:      r.submitted.Load(),
		Accepted:       r.accepted.Load(),
		Rejected:       r.rejected.Load(),
		Timeouts:       r.timeouts.Load(),
		ProtocolErrors: r.protocolErrors.Load(),
		ConnErrors:     r.connErrors.Load(),
		Jobs:           r.jobs.Load(),
		RejectedByCode: map[int]int64{},
		Latency:        r.latency.Snapshot(),
	}
	for i := range r.byCode {
		if n := r.byCode[i].Load(); n > 0 {
			s.RejectedByCode[i] = n
		}
	}
	return s
}

// Stats are the rates between two snapshots.
type Stats struct {
	Elapsed     time.Duration
	Accepted    int64
	Rejected    int64
	AcceptedPS  float64 // accepted shares per second
	LatencyP50  time.Duration
	LatencyP99  time.Duration
	LatencyMax  time.Duration
	Submits     uint64 // replies timed
	Timeouts    int64
	RejectCodes map[int]int64
}

// Since returns what happened between earlier and s.
func (s Snapshot) Since(earlier Snapshot) Stats {
	lat := s.Latency.Sub(earlier.Latency)
	st := Stats{
		Elapsed:     s.Time.Sub(earlier.Time),
		Accepted:    s.Accepted - earlier.Accepted,
		Rejected:    s.Rejected - earlier.Rejected,
		LatencyP50:  lat.Quantile(0.50),
		LatencyP99:  lat.Quantile(0.99),
		LatencyMax:  lat.Max(),
		Submits:     lat.Count(),
		Timeouts:    s.Timeouts - earlier.Timeouts,
		RejectCodes: map[int]int64{},
	}
	if st.Elapsed > 0 {
		st.AcceptedPS = float64(st.Accepted) / st.Elapsed.Seconds()
	}
	for k, v := range s.RejectedByCode {
		if d := v - earlier.RejectedByCode[k]; d > 0 {
			st.RejectCodes[k] = d
		}
	}
	return st
}

func (st Stats) String() string {
	s := fmt.Sprintf("accepted %d (%.0f/s) rejected %d, submit→reply p50 %v p99 %v max %v",
		st.Accepted, st.AcceptedPS, st.Rejected, st.LatencyP50.Round(time.Microsecond),
		st.LatencyP99.Round(time.Microsecond), st.LatencyMax.Round(time.Microsecond))
	if len(st.RejectCodes) > 0 {
		s += fmt.Sprintf(" rejections by code %v", st.RejectCodes)
	}
	if st.Timeouts > 0 {
		s += fmt.Sprintf(" timeouts %d", st.Timeouts)
	}
	return s
}
