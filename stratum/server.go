package stratum

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// Server accepts miners on its ports and runs one Session per connection.
type Server struct {
	cfg   Config
	log   *zap.Logger
	stats *Stats

	// base is cancelled when shutdown gives up waiting; sessions derive the
	// contexts of their Record and SubmitBlock calls from it.
	base       context.Context
	cancelBase context.CancelFunc

	mu        sync.Mutex
	listeners []net.Listener
	sessions  map[*Session]struct{}
	perIP     map[string]int
	bans      map[string]time.Time // "ip:<addr>" or "worker:<name>" → until
	// banStore shares bans with the other frontends (UseBanStore);
	// sharedBans is its content as last read, banStored when the store
	// confirmed each local ban (bans.go).
	banStore   BanStore
	sharedBans map[string]time.Time
	banStored  map[string]time.Time
	inUse      map[uint32]struct{} // extranonce1 values of live sessions
	counter    uint32              // next extranonce1 counter value
	// resting holds the extranonce1 values of sessions that were sent work
	// and ended since the last clean job: the jobs they worked on may still
	// be live, so the values are not handed out again until the next clean
	// job makes those jobs stale (see allocExtranonce1).
	resting map[uint32]struct{}
	// en1Low masks the counter bits of an extranonce1 (below the instance
	// prefix); tests shrink it to reach the wrap in a few subscribes.
	en1Low uint32
	// en1Freed is signalled (closed and replaced) when a clean job empties
	// resting; en1Waiting counts subscribes waiting for it.
	en1Freed   chan struct{}
	en1Waiting int

	current  atomic.Pointer[jobLines]
	settings atomic.Pointer[tunables] // what Reload may change

	recentMu   sync.Mutex
	recent     [recentJobs]recentJob // jobs prepared lately, for the age of stale shares
	recentNext int
	tasks      chan *task    // idle handler goroutines receive here (dispatch.go)
	runs       chan *Session // and event-loop sessions to serve (evloop.go)
	poller     *poller       // the event loop; nil: a reader goroutine per connection
	presence   presenceState // connected-time reports (presence.go)

	closing  atomic.Bool
	quit     chan struct{} // closed when shutdown starts
	stopOnce sync.Once
	wg       sync.WaitGroup // accept loops and sessions
}

// jobLines holds a job's notify lines, encoded once and shared read-only by
// every session.
type jobLines struct {
	job       *blocktemplate.Job
	work      *shares.Work // precomputed validation state, shared by sessions
	line      []byte       // with the job's own clean_jobs flag
	cleanLine []byte       // with clean_jobs=true, for a session's first job
}

// New validates cfg and returns a server; call Listen and Run (or Run alone).
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.Recorder = canonicalRecorder{cfg.Recorder}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		stats:      newStats(),
		base:       base,
		cancelBase: cancel,
		sessions:   make(map[*Session]struct{}),
		perIP:      make(map[string]int),
		bans:       make(map[string]time.Time),
		banStored:  make(map[string]time.Time),
		inUse:      make(map[uint32]struct{}),
		resting:    make(map[uint32]struct{}),
		en1Freed:   make(chan struct{}),
		quit:       make(chan struct{}),
		tasks:      make(chan *task),
		runs:       make(chan *Session),
	}
	s.settings.Store(tunablesOf(cfg))
	// Start the counter at a random-ish point so a restarted process does
	// not hand out the extranonce1 values its previous life used.
	s.counter = uint32(time.Now().UnixNano())
	s.en1Low = ^uint32(0) >> (8 * len(cfg.InstanceID))
	return s, nil
}

// Stats returns the server's live counters.
func (s *Server) Stats() *Stats { return s.stats }

// Listen binds every configured port. It is called by Run when needed;
// calling it first lets a caller learn the bound addresses (port 0).
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listeners != nil {
		return nil
	}
	var ls []net.Listener
	for _, p := range s.cfg.Ports {
		l, err := net.Listen("tcp", p.Address)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("listen %s: %w", p.Address, err)
		}
		if p.TLSCertFile != "" {
			cert, err := tls.LoadX509KeyPair(p.TLSCertFile, p.TLSKeyFile)
			if err != nil {
				l.Close()
				for _, l := range ls {
					l.Close()
				}
				return fmt.Errorf("load TLS key pair for %s: %w", p.Address, err)
			}
			l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		}
		ls = append(ls, l)
	}
	if s.cfg.ReadLoop == ReadLoopEpoll {
		p, err := newPoller(s)
		if err != nil {
			s.log.Warn("no event loop: every connection gets a reader goroutine", zap.Error(err))
		} else {
			s.poller = p
		}
	}
	s.listeners = ls
	return nil
}

// Addrs returns the bound address of each port, in Config.Ports order (nil
// before Listen).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// DefaultShutdownTimeout is the default of Config.ShutdownTimeout.
const DefaultShutdownTimeout = 5 * time.Second

// Run accepts connections until ctx ends, then shuts down gracefully within
// Config.ShutdownTimeout. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	ls := s.listeners
	s.mu.Unlock()
	for i, l := range ls {
		s.wg.Add(1)
		go s.acceptLoop(l, i)
	}
	stopPresence := s.startPresence()
	defer stopPresence() // after Shutdown: the closed sessions' last seconds
	select {
	case <-ctx.Done():
	case <-s.quit:
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	return s.Shutdown(sctx)
}

// Shutdown stops accepting, sends client.reconnect to every miner, lets
// each session finish the request it is handling and flush its writes, then
// closes. When ctx ends first, remaining connections are closed at once and
// ctx's error is returned. Safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.closing.Store(true)
		close(s.quit)
		s.mu.Lock()
		for _, l := range s.listeners {
			l.Close()
		}
		s.mu.Unlock()
		for _, sess := range s.snapshot() {
			sess.beginShutdown()
		}
	})
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.stopPoller()
		return nil
	case <-ctx.Done():
		s.cancelBase()
		for _, sess := range s.snapshot() {
			sess.close(CloseShutdown)
		}
		<-done
		s.stopPoller()
		return fmt.Errorf("stratum shutdown: %w", ctx.Err())
	}
}

// stopPoller stops the event loop once every session has ended.
func (s *Server) stopPoller() {
	s.mu.Lock()
	p := s.poller
	s.mu.Unlock()
	if p != nil {
		p.close()
	}
}

func (s *Server) snapshot() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}

// acceptLoop accepts connections on one listener; it must be run as a
// goroutine and ends when the listener closes.
func (s *Server) acceptLoop(l net.Listener, port int) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		conn, err := l.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and similar: back off, keep serving.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed", zap.Error(err), zap.Duration("backoff", backoff))
			select {
			case <-time.After(backoff):
			case <-s.quit:
				return
			}
			continue
		}
		backoff = 0
		s.admit(conn, port)
	}
}

// admit applies the connection limits and bans, then starts the session.
func (s *Server) admit(conn net.Conn, port int) {
	ip := hostOf(conn.RemoteAddr())
	now := time.Now()
	t := s.t()
	s.mu.Lock()
	reason := CloseReason(-1)
	switch {
	case s.closing.Load():
		reason = CloseShutdown
	case s.bannedLocked("ip:"+ip, now):
		reason = CloseBanned
	case len(s.sessions) >= t.maxConnections:
		reason = CloseTooManyConnections
	case t.maxPerIP > 0 && s.perIP[ip] >= t.maxPerIP:
		reason = CloseTooManyPerIP
	}
	if reason >= 0 {
		s.mu.Unlock()
		s.stats.Closes[reason].Add(1) // before the close the client sees
		conn.Close()
		if ce := s.log.Check(zap.DebugLevel, "connection refused"); ce != nil {
			ce.Write(zap.String("remote", conn.RemoteAddr().String()), zap.Stringer("reason", reason))
		}
		return
	}
	if s.cfg.WriteBuffer > 0 {
		raw := conn
		if tc, ok := conn.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tcp, ok := raw.(*net.TCPConn); ok {
			_ = tcp.SetWriteBuffer(s.cfg.WriteBuffer)
		}
	}
	sess := newSession(s, conn, port, ip, now)
	if s.poller != nil && sess.raw != nil {
		// Armed before it is visible, so that Shutdown finds it so.
		sess.lr = message.NewLineReader(lineSource(conn, sess.raw, true), s.cfg.MaxLineLength)
		s.poller.add(sess, now.Add(min(t.authorizeTimeout, t.idleTimeout)))
	} else {
		sess.closedCh = make(chan struct{})
	}
	s.sessions[sess] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.Connections.Add(1)
	if sess.ev == nil {
		go sess.readLoop()
		return
	}
	sess.mu.Lock()
	if err := sess.rearm(); err != nil { // adds it to the epoll set
		s.log.Warn("add to the epoll set failed; closing", zap.String("remote", ip), zap.Error(err))
		sess.closeLocked(CloseReadError) // its handler ends it
	}
	sess.mu.Unlock()
}

func (s *Server) unregister(sess *Session) {
	s.presenceEnded(sess)
	sess.mu.Lock()
	worked := sess.running // it may have been sent jobs
	sess.mu.Unlock()
	s.mu.Lock()
	delete(s.sessions, sess)
	if n := s.perIP[sess.ip] - 1; n > 0 {
		s.perIP[sess.ip] = n
	} else {
		delete(s.perIP, sess.ip)
	}
	if sess.subscribed {
		delete(s.inUse, sess.en1)
		if worked {
			s.resting[sess.en1] = struct{}{}
		}
	}
	s.mu.Unlock()
	s.stats.Connections.Add(-1)
}

// bannedLocked reports whether key is banned now, here or (UseBanStore) at
// another frontend as last read; expired local bans are dropped.
func (s *Server) bannedLocked(key string, now time.Time) bool {
	if until, ok := s.sharedBans[key]; ok && now.Before(until) {
		return true
	}
	until, ok := s.bans[key]
	if !ok {
		return false
	}
	if now.After(until) {
		delete(s.bans, key)
		delete(s.banStored, key)
		return false
	}
	return true
}

func (s *Server) banned(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bannedLocked(key, time.Now())
}

func (s *Server) ban(keys ...string) {
	until := time.Now().Add(s.t().ban.Duration)
	s.mu.Lock()
	for _, k := range keys {
		s.bans[k] = until
	}
	shared := s.banStore != nil
	s.mu.Unlock()
	if shared {
		// Off the share path: the ban is in force here already.
		go func() {
			for _, k := range keys {
				if err := s.storeBan(s.base, k, until); err != nil {
					s.log.Warn("ban not shared with the other frontends", zap.Error(err))
				}
			}
		}()
	}
}

// canonicalRecorder records every share under its worker's canonical name
// (worker.canonicalName): a session keeps the username as the miner spelled
// it, because its submits name the worker that way, but the statistics must
// not split one address into "BC1Q…" and "bc1q…" keys. Share.Address is
// already canonical (parseWorker) and Share.WorkerName is the part after the
// address, so the name is rebuilt from them.
type canonicalRecorder struct{ Recorder }

func (r canonicalRecorder) RecordAsync(sh *shares.Share, done shares.RecordDone, token uint64) error {
	if !isCanonicalName(sh) { // the common case allocates nothing
		w := worker{address: sh.Address, suffix: sh.WorkerName}
		sh.Worker = w.canonicalName()
	}
	return r.Recorder.RecordAsync(sh, done, token)
}

// isCanonicalName reports whether sh.Worker is already Address[.WorkerName].
func isCanonicalName(sh *shares.Share) bool {
	if sh.WorkerName == "" {
		return sh.Worker == sh.Address
	}
	a := len(sh.Address)
	return len(sh.Worker) == a+1+len(sh.WorkerName) && sh.Worker[:a] == sh.Address && sh.Worker[a] == '.' &&
		sh.Worker[a+1:] == sh.WorkerName
}

// allocExtranonce1 returns a 4-byte extranonce1 unique among live sessions
// and prefixed by the instance id. A resume request (the session id a miner
// got in an earlier subscribe) is deliberately not honoured: the old
// extranonce1 would come back with empty duplicate filters, so a miner could
// resubmit every share it had been credited for on the jobs still live. A
// fresh extranonce1 costs a reconnecting miner only the work in flight.
//
// For the same reason a value whose session was sent work is not handed out
// again until a clean job (a new block) has made every job it worked on
// stale: the counter wraps after 2^24 subscribes (one-byte instance id) and
// would otherwise bring such a value back while its jobs are live. Values
// are skipped while in use or resting; when every value is (2^24 sessions
// that ended since the last block, or fewer with a two-byte instance id),
// the subscribe waits for the next clean job rather than reuse one.
func (s *Server) allocExtranonce1() uint32 {
	prefix := s.cfg.InstanceID
	shift := uint(8 * (extranonce1Size - len(prefix)))
	var base uint32
	for _, b := range prefix {
		base = base<<8 | uint32(b)
	}
	base <<= shift
	s.mu.Lock()
	defer s.mu.Unlock()
	low := s.en1Low
	for {
		for range uint64(low) + 1 {
			v := base | (s.counter & low)
			s.counter++
			if _, used := s.inUse[v]; used {
				continue
			}
			if _, r := s.resting[v]; r {
				continue
			}
			s.inUse[v] = struct{}{}
			return v
		}
		// Every value is live or resting: wait for a clean job. On
		// shutdown any value will do, the session ends before it can
		// submit (the reader stops at the next line).
		freed := s.en1Freed
		s.en1Waiting++
		if s.en1Waiting == 1 {
			s.log.Warn("extranonce1 space exhausted until the next block; subscribes wait",
				zap.Int("live", len(s.inUse)), zap.Int("resting", len(s.resting)))
		}
		s.mu.Unlock()
		select {
		case <-freed:
		case <-s.quit:
			s.mu.Lock()
			s.en1Waiting--
			return base | (s.counter & low)
		}
		s.mu.Lock()
		s.en1Waiting--
	}
}

// jobsCleaned is called when a clean job is published: every job sent
// before it is stale, so the resting extranonce1 values may be used again.
func (s *Server) jobsCleaned() {
	s.mu.Lock()
	if len(s.resting) > 0 {
		s.resting = make(map[uint32]struct{}) // a new map gives a large one's memory back
	}
	close(s.en1Freed)
	s.en1Freed = make(chan struct{})
	s.mu.Unlock()
}

// linesFor returns the encoded notify lines and work of job, from the cache
// when it is the published one; nil when the job cannot be validated.
func (s *Server) linesFor(job *blocktemplate.Job) *jobLines {
	cached := s.current.Load()
	if cached != nil && cached.job == job {
		return cached
	}
	jl, err := s.encodeJob(job)
	if err != nil {
		s.log.Error("prepare job", zap.String("job_id", job.ID), zap.Error(err))
		return nil
	}
	// Cache it unless Publish stored a newer job meanwhile, so sessions
	// share one Work and one notify line even before the first Publish.
	s.current.CompareAndSwap(cached, jl)
	return jl
}

func (s *Server) encodeJob(job *blocktemplate.Job) (*jobLines, error) {
	work, err := s.cfg.Validator.NewWork(job)
	if err != nil {
		return nil, fmt.Errorf("prepare work for job %s: %w", job.ID, err)
	}
	s.noteJob(job)
	n := notifyOf(job)
	jl := &jobLines{job: job, work: work, line: message.AppendNotify(nil, &n)}
	if n.CleanJobs {
		jl.cleanLine = jl.line
	} else {
		n.CleanJobs = true
		jl.cleanLine = message.AppendNotify(nil, &n)
	}
	return jl, nil
}

// recentJobs is how many prepared jobs are remembered for stale-share ages;
// far more than the job manager keeps valid.
const recentJobs = 64

type recentJob struct {
	id      string
	created time.Time
}

func (s *Server) noteJob(job *blocktemplate.Job) {
	s.recentMu.Lock()
	defer s.recentMu.Unlock()
	for _, r := range s.recent {
		if r.id == job.ID {
			return
		}
	}
	s.recent[s.recentNext] = recentJob{id: job.ID, created: job.CreatedAt}
	s.recentNext = (s.recentNext + 1) % recentJobs
}

// jobCreated returns when a recently prepared job was created; a stale
// share's job age is measured from it.
func (s *Server) jobCreated(id string) (time.Time, bool) {
	s.recentMu.Lock()
	defer s.recentMu.Unlock()
	for _, r := range s.recent {
		if r.id == id && !r.created.IsZero() {
			return r.created, true
		}
	}
	return time.Time{}, false
}

// notifyOf renders a job's mining.notify params (stratum-v1.md §4, §6.2).
func notifyOf(j *blocktemplate.Job) message.Notify {
	var prev [32]byte
	for i := 0; i < 32; i += 4 {
		prev[i], prev[i+1], prev[i+2], prev[i+3] = j.PrevHash[i+3], j.PrevHash[i+2], j.PrevHash[i+1], j.PrevHash[i]
	}
	branch := make([]string, len(j.MerkleBranch))
	for i := range j.MerkleBranch {
		branch[i] = hex.EncodeToString(j.MerkleBranch[i][:])
	}
	return message.Notify{
		JobID:        j.ID,
		PrevHash:     hex.EncodeToString(prev[:]),
		Coinb1:       hex.EncodeToString(j.Coinb1),
		Coinb2:       hex.EncodeToString(j.Coinb2),
		MerkleBranch: branch,
		Version:      string(message.AppendHex32(nil, j.Version)),
		NBits:        string(message.AppendHex32(nil, j.Bits)),
		NTime:        string(message.AppendHex32(nil, j.NTime)),
		CleanJobs:    j.CleanJobs,
	}
}

// Follow publishes every job from a manager subscription
// (blocktemplate.Manager.Subscribe) until the channel closes or ctx ends.
func (s *Server) Follow(ctx context.Context, jobs <-chan *blocktemplate.Job) {
	for {
		select {
		case <-ctx.Done():
			return
		case job, ok := <-jobs:
			if !ok {
				return
			}
			s.Publish(job)
		}
	}
}

// Publish sends a new job to every session at once: the notify line is
// encoded once and queued on every connection (after a set_difficulty where
// that connection's difficulty changed). For a clean job, the time from
// Job.TipSeenAt (when the node's new tip was seen) to the write on each
// connection is recorded in Stats.TipToNotify. It never blocks on a slow
// connection.
func (s *Server) Publish(job *blocktemplate.Job) {
	if job == nil {
		return
	}
	tipSeenAt := job.TipSeenAt
	jl, err := s.encodeJob(job)
	if err != nil {
		s.log.Error("publish job", zap.Error(err))
		return
	}
	s.current.Store(jl)
	s.stats.Broadcasts.Add(1)
	if job.CleanJobs {
		s.jobsCleaned()
	}
	if !job.CleanJobs {
		tipSeenAt = time.Time{}
	}
	sessions := s.snapshot()
	workers := min(runtime.GOMAXPROCS(0), (len(sessions)+255)/256)
	if workers <= 1 {
		for _, sess := range sessions {
			sess.sendJob(jl, tipSeenAt)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (len(sessions) + workers - 1) / workers
	for i := 0; i < len(sessions); i += chunk {
		part := sessions[i:min(i+chunk, len(sessions))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, sess := range part {
				sess.sendJob(jl, tipSeenAt)
			}
		}()
	}
	wg.Wait()
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
