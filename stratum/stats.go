package stratum

import (
	"math"
	"sync/atomic"
	"time"
)

// CloseReason says why a connection ended.
type CloseReason int

// Close reasons.
const (
	CloseClient             CloseReason = iota // the miner closed the connection
	CloseReadError                             // read failed
	CloseWriteError                            // write failed or timed out
	CloseSlowConsumer                          // outbound queue over its limit
	CloseLineTooLong                           // a line over MaxLineLength
	CloseProtocolViolation                     // repeated malformed messages
	CloseAuthorizeTimeout                      // no successful authorize in time
	CloseIdle                                  // nothing received for IdleTimeout
	CloseBanned                                // IP or worker banned
	CloseTooManyConnections                    // MaxConnections reached
	CloseTooManyPerIP                          // MaxConnectionsPerIP reached
	CloseShutdown                              // server shutting down
	numCloseReasons
)

var closeReasonNames = [...]string{
	CloseClient:             "client_closed",
	CloseReadError:          "read_error",
	CloseWriteError:         "write_error",
	CloseSlowConsumer:       "slow_consumer",
	CloseLineTooLong:        "line_too_long",
	CloseProtocolViolation:  "protocol_violation",
	CloseAuthorizeTimeout:   "authorize_timeout",
	CloseIdle:               "idle_timeout",
	CloseBanned:             "banned",
	CloseTooManyConnections: "too_many_connections",
	CloseTooManyPerIP:       "too_many_per_ip",
	CloseShutdown:           "server_shutdown",
}

// String returns the reason's snake_case name (for logs and metric labels).
func (r CloseReason) String() string {
	if r >= 0 && int(r) < len(closeReasonNames) {
		return closeReasonNames[r]
	}
	return "unknown"
}

// CloseReasons lists every reason, for exporting counters.
func CloseReasons() []CloseReason {
	out := make([]CloseReason, numCloseReasons)
	for i := range out {
		out[i] = CloseReason(i)
	}
	return out
}

// Histogram is a fixed-bucket histogram of durations with atomic counters.
type Histogram struct {
	bounds []time.Duration
	counts []atomic.Uint64 // len(bounds)+1; last is +Inf
	sum    atomic.Int64    // nanoseconds
	n      atomic.Uint64
}

func newHistogram(bounds []time.Duration) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe adds one duration.
func (h *Histogram) Observe(d time.Duration) {
	i := 0
	for i < len(h.bounds) && d > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
	h.n.Add(1)
}

// Snapshot returns the upper bounds, the non-cumulative count per bucket
// (the last is above every bound), the sum and the count.
func (h *Histogram) Snapshot() (bounds []time.Duration, counts []uint64, sum time.Duration, n uint64) {
	counts = make([]uint64, len(h.counts))
	for i := range h.counts {
		counts[i] = h.counts[i].Load()
	}
	return h.bounds, counts, time.Duration(h.sum.Load()), h.n.Load()
}

// FanoutBuckets are the bounds of the tip-to-notify histogram.
var FanoutBuckets = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second,
}

// SubmitBuckets are the bounds of the submit-latency histogram. The group
// commit to Redis (the Redis round trip of the batch in flight and of the
// share's own) dominates a healthy accepted share; rejected shares answer in
// microseconds.
var SubmitBuckets = []time.Duration{
	50 * time.Microsecond, 100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

// StaleAgeBuckets are the job-age bounds of the stale-share counters.
var StaleAgeBuckets = []time.Duration{
	100 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute,
}

// Stats are the server's counters, safe to read at any time. The metrics
// layer exports them; stratum imports no metrics library.
type Stats struct {
	Connections     atomic.Int64     // currently open
	Accepted        atomic.Uint64    // accepted shares
	acceptedDiff    atomic.Uint64    // float64 bits of the sum of credited difficulty
	Blocks          atomic.Uint64    // block candidates found
	BlocksConfirmed atomic.Uint64    // block candidates a node confirmed
	BlockErrors     atomic.Uint64    // block candidates that failed or that no node confirmed
	Rejected        [6]atomic.Uint64 // by Stratum code 20..25
	Closes          [numCloseReasons]atomic.Uint64
	// StaleByAge counts stale shares (21 for a job that existed: a previous
	// block's, or aged out) by the age of the job (since Job.CreatedAt); index i counts ages ≤ StaleAgeBuckets[i], the last
	// index ages above every bound.
	StaleByAge [7]atomic.Uint64
	// TipToNotify is the time from the node's new tip (Job.TipSeenAt as
	// given to Publish) to the clean job being written to each connection.
	TipToNotify *Histogram
	// Submit is the time from a mining.submit line decoded to its reply
	// (true or an error) released to the connection: validation and the
	// wait for the share to become durable (block submission runs beside
	// it). Every submit is observed, accepted or rejected.
	Submit *Histogram
	// PipelineStalls counts the times a connection's reader stopped because
	// maxPipelined replies were waiting for the recorder (backpressure).
	PipelineStalls atomic.Uint64
	// BannedConnections counts connections closed for their reject ratio.
	BannedConnections atomic.Uint64
	// Panics counts sessions ended by a recovered panic (a bug; the
	// connection is closed as a protocol violation).
	Panics atomic.Uint64
	// Broadcasts counts published jobs.
	Broadcasts atomic.Uint64
	// DirectWrites counts lines written whole by the goroutine that sent
	// them (the socket was idle); WriterFlushes counts writes made by a
	// connection's writer goroutine (lines queued behind a busy or full
	// socket, possibly several per write).
	DirectWrites  atomic.Uint64
	WriterFlushes atomic.Uint64
}

func newStats() *Stats {
	return &Stats{TipToNotify: newHistogram(FanoutBuckets), Submit: newHistogram(SubmitBuckets)}
}

// AcceptedDifficulty returns the sum of the difficulty credited to accepted
// shares (the pool's accepted work, in difficulty-1 units).
func (s *Stats) AcceptedDifficulty() float64 {
	return math.Float64frombits(s.acceptedDiff.Load())
}

func (s *Stats) addAcceptedDifficulty(d float64) {
	for {
		old := s.acceptedDiff.Load()
		if s.acceptedDiff.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+d)) {
			return
		}
	}
}

// RejectedByCode returns the rejected count for a Stratum code 20..25.
func (s *Stats) RejectedByCode(code int) uint64 {
	if code < 20 || code > 25 {
		return 0
	}
	return s.Rejected[code-20].Load()
}

// ClosedBy returns how many connections closed for reason r.
func (s *Stats) ClosedBy(r CloseReason) uint64 {
	if r < 0 || r >= numCloseReasons {
		return 0
	}
	return s.Closes[r].Load()
}

func (s *Stats) stale(age time.Duration) {
	i := 0
	for i < len(StaleAgeBuckets) && age > StaleAgeBuckets[i] {
		i++
	}
	s.StaleByAge[i].Add(1)
}
