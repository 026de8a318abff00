package stratum

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Presence is how long one worker was connected since the previous report:
// the union of the intervals in which at least one of its sessions on this
// server was subscribed and authorized (several machines mining under one
// name count once), and the user agent its miner sent in mining.subscribe.
// Package economics divides a worker's work by this time, so a worker that
// joined 5 minutes ago is measured over those 5 minutes, not the hour.
type Presence struct {
	// Worker is the full name with the canonical address, the name its
	// shares are recorded under (see canonicalRecorder).
	Worker  string
	Address string
	// UserAgent is the first param of mining.subscribe of one of its
	// sessions (the newest seen), cut to 128 bytes; "" when none was sent,
	// or when it is the one the last successful report carried less than
	// agentResend ago (it is stored already: one write an hour, not one per
	// report).
	UserAgent string
	// Difficulty is the largest current share difficulty of its sessions,
	// sent with the user agent (0 in the reports that omit it): what
	// bounds the hashrate of a worker that has not had a share accepted.
	Difficulty float64
	// Spans are disjoint intervals in whole seconds, oldest first.
	Spans []Span
}

// Span is a connected interval [From, To).
type Span struct{ From, To time.Time }

// PresenceRecorder stores workers' connected time and user agents for the
// statistics (Config.Presence). RecordPresence is called by one goroutine
// every Config.PresenceInterval, never on the share path; an error is
// logged and the report is dropped (statistics only: the next report
// carries the next interval, and the user agents again).
type PresenceRecorder interface {
	RecordPresence(ctx context.Context, p []Presence) error
}

// DefaultPresenceInterval is the default of Config.PresenceInterval: one
// report per worker and minute, just after the minute ends, writes each
// bucket's connected time once (a shorter interval writes it in pieces,
// for the same result at several times the Redis time).
const DefaultPresenceInterval = time.Minute

// agentResend is how often an unchanged user agent is sent again (the
// store's copy may have expired with the worker's other statistics).
const agentResend = int64(time.Hour / time.Second)

// maxEndedSessions bounds the ended sessions waiting for the next report;
// past it (a flood of short connections) their last seconds are not
// reported.
const maxEndedSessions = 1 << 16

// presenceState is the server's side of the connected-time reports.
type presenceState struct {
	mu    sync.Mutex
	last  int64          // unix second the last report ended at (0: none yet)
	ended []endedSession // sessions that ended since the last report
	fails int            // reports failed in a row (log sampling)
	// agents is each worker's user agent as last reported successfully,
	// and when (unix s); owned by the reporting goroutine.
	agents map[string]sentAgent
}

type sentAgent struct {
	agent string
	at    int64
}

// endedSession is a session that ended after it had been running.
type endedSession struct {
	workers  []worker
	agent    string
	diff     float64
	from, to int64 // unix seconds
}

// presenceEnded notes the connected time of a session that ends, for the
// next report. It runs on the session's reader goroutine (unregister), the
// owner of userAgent.
func (s *Server) presenceEnded(sess *Session) {
	if s.cfg.Presence == nil {
		return
	}
	sess.mu.Lock()
	running, diff := sess.running, sess.diff
	var ws []worker
	if running {
		ws = slices.Clone(sess.workers)
	}
	sess.mu.Unlock()
	if !running || len(ws) == 0 {
		return
	}
	e := endedSession{workers: ws, agent: sess.userAgent, diff: diff, from: sess.createdAt.Unix(), to: time.Now().Unix()}
	p := &s.presence
	p.mu.Lock()
	if len(p.ended) < maxEndedSessions {
		p.ended = append(p.ended, e)
	}
	p.mu.Unlock()
}

// startPresence starts the report loop when a PresenceRecorder is
// configured. The returned function stops it and sends a last report (call
// it once the sessions are closed, so their last seconds are in it).
func (s *Server) startPresence() (stop func()) {
	if s.cfg.Presence == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		s.presenceLoop(quit)
	}()
	return func() {
		close(quit)
		<-done
		s.reportPresence(time.Now())
	}
}

// presenceLoop reports connected time every PresenceInterval, on the wall
// clock's multiples of it (with the default, one report lands just after
// each minute ends, so a reader of complete minutes finds them whole). It must be run as a goroutine; it returns when quit is closed.
func (s *Server) presenceLoop(quit <-chan struct{}) {
	iv := s.cfg.PresenceInterval
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		t.Reset(now.Truncate(iv).Add(iv).Sub(now) + 50*time.Millisecond)
		select {
		case <-quit:
			return
		case <-t.C:
		}
		s.reportPresence(time.Now())
	}
}

// reportPresence sends the connected time from the end of the last report
// to now: the running sessions' and those that ended meanwhile, merged per
// worker.
func (s *Server) reportPresence(now time.Time) {
	live := s.snapshot()
	to := now.Unix()
	p := &s.presence
	p.mu.Lock()
	from := p.last
	if to <= from {
		p.mu.Unlock()
		return
	}
	p.last = to
	ended := p.ended
	p.ended = nil
	p.mu.Unlock()

	byName := map[string]*Presence{}
	agentSince := map[string]int64{} // start of the session whose agent is kept
	add := func(w *worker, agent string, diff float64, a, b int64) {
		since := a
		a, b = max(a, from), min(b, to)
		if a >= b {
			return
		}
		name := w.canonicalName()
		pr := byName[name]
		if pr == nil {
			pr = &Presence{Worker: name, Address: w.address}
			byName[name] = pr
		}
		// The newest session's agent (ties: the larger string), so
		// machines with different firmware under one name do not make
		// it change from one report to the next.
		if cur, ok := agentSince[name]; agent != "" && (!ok || since > cur || since == cur && agent > pr.UserAgent) {
			pr.UserAgent, agentSince[name] = agent, since
		}
		pr.Difficulty = max(pr.Difficulty, diff)
		pr.Spans = append(pr.Spans, Span{From: time.Unix(a, 0), To: time.Unix(b, 0)})
	}
	for i := range ended {
		e := &ended[i]
		for j := range e.workers {
			add(&e.workers[j], e.agent, e.diff, e.from, e.to)
		}
	}
	var ws []worker
	for _, sess := range live {
		sess.mu.Lock()
		ok, diff := sess.running && !sess.closed, sess.diff
		if ok {
			ws = append(ws[:0], sess.workers...)
		}
		sess.mu.Unlock()
		if !ok {
			continue // not authorized yet, or ended: presenceEnded has it
		}
		// userAgent was written before running was set under mu, which
		// this goroutine has seen: the read is ordered after the write.
		agent := sess.userAgent
		for j := range ws {
			add(&ws[j], agent, diff, sess.createdAt.Unix(), to)
		}
	}
	if len(byName) == 0 {
		return
	}
	out := make([]Presence, 0, len(byName))
	sent := make(map[string]sentAgent, len(byName))
	for _, pr := range byName {
		pr.Spans = mergeSpans(pr.Spans)
		if prev, ok := p.agents[pr.Worker]; ok && prev.agent == pr.UserAgent && to-prev.at < agentResend {
			sent[pr.Worker] = prev
			pr.UserAgent, pr.Difficulty = "", 0
		} else {
			sent[pr.Worker] = sentAgent{agent: pr.UserAgent, at: to}
		}
		out = append(out, *pr)
	}
	slices.SortFunc(out, func(a, b Presence) int { return strings.Compare(a.Worker, b.Worker) })
	ctx, cancel := context.WithTimeout(context.Background(), min(s.cfg.PresenceInterval, 5*time.Second))
	err := s.cfg.Presence.RecordPresence(ctx, out)
	cancel()
	p.mu.Lock()
	if err != nil {
		p.fails++ // agents new in this report go again with the next one
	} else {
		p.fails = 0
		p.agents = sent // workers no longer connected drop out
	}
	fails := p.fails
	p.mu.Unlock()
	if err != nil && (fails == 1 || fails%100 == 0) {
		s.log.Warn("connected time not recorded", zap.Int("workers", len(out)), zap.Int("failures", fails), zap.Error(err))
	}
}

// mergeSpans sorts spans and joins those that overlap or touch.
func mergeSpans(spans []Span) []Span {
	slices.SortFunc(spans, func(a, b Span) int { return a.From.Compare(b.From) })
	out := spans[:0]
	for _, sp := range spans {
		if n := len(out); n > 0 && !sp.From.After(out[n-1].To) {
			if sp.To.After(out[n-1].To) {
				out[n-1].To = sp.To
			}
			continue
		}
		out = append(out, sp)
	}
	return out
}
