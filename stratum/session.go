package stratum

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// Session is one miner connection. Its protocol state belongs to the
// reader goroutine; the fields under mu are shared with the broadcaster and
// the writer.
type Session struct {
	srv       *Server
	conn      net.Conn
	raw       syscall.RawConn // conn's socket for direct writes; nil for TLS
	port      int             // index in Config.Ports
	ip        string
	createdAt time.Time

	// Owned by readLoop.
	subscribed    bool
	en1           uint32
	en1Bytes      [extranonce1Size]byte
	en2Size       int
	userAgent     string
	workers       []worker
	versionMask   uint32
	configured    bool // version rolling negotiated
	extranonceSub bool
	protoErrors   int
	banStart      time.Time
	banTotal      int
	banRejected   int
	blockSlots    chan struct{} // block submissions running (submit.go); made at the first block

	mu       sync.Mutex
	out      [][]byte
	outBytes int
	writing  bool
	closing  bool // close once the queue is flushed
	// reconnectQueued: client.reconnect is queued (shutdown); whichever of
	// Shutdown and the reader sees the shutdown first queues it.
	reconnectQueued bool
	closed          bool
	reason          CloseReason
	tipSeen         time.Time       // tip time of a queued clean job, observed after its write
	running         bool            // subscribed and authorized: jobs flow
	diff            float64         // difficulty for the next job
	diffSent        bool            // diff has been sent to the miner
	minDiff         float64         // miner's floor (minimum-difficulty, suggestions)
	shares          *shares.Session // share validation state; nil before subscribe
	vdStart         time.Time
	vdShares        int

	// Reply queue of the pipelined submit path (pipeline.go).
	pend        []pendingReply
	pendHead    int           // first slot not written yet
	pendTok     uint64        // token of pend[pendHead]
	slotWaiting bool          // the reader waits on slotFree
	slotFree    chan struct{} // buffered(1), made when first needed

	closedCh chan struct{} // closed with the connection; nil under the event loop, which has no reader to wait on it

	// Event loop (evloop.go); ev is nil for a session with a reader
	// goroutine.
	ev       *poller
	lr       *message.LineReader // owned by the handler serving the session
	evState  atomic.Int32
	evSlot   uint32
	evGen    uint32
	deadline atomic.Int64 // unix ns; the sweeper ends an armed session past it
	expired  bool         // set by the sweeper before it resumes the session
	arm      armState
}

type worker struct {
	name    string // as authorized
	address string
	suffix  string
}

func newSession(srv *Server, conn net.Conn, port int, ip string, now time.Time) *Session {
	return &Session{
		srv:       srv,
		conn:      conn,
		raw:       rawConnOf(conn),
		port:      port,
		ip:        ip,
		createdAt: now,
		diff:      srv.t().ports[port].StartDifficulty,
		vdStart:   now,
		banStart:  now,
	}
}

// hasWorker reports whether name is authorized on the session.
func (s *Session) hasWorker(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.workers {
		if w.name == name {
			return true
		}
	}
	return false
}

// Difficulty returns the session's current difficulty.
func (s *Session) Difficulty() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.diff
}

// readLoop reads lines until the connection ends and has each handled in
// turn (see dispatch.go); it must be run as a goroutine. It stays shallow so
// that an idle connection parks on a small stack.
func (s *Session) readLoop() {
	srv := s.srv
	reason := CloseClient
	defer func() {
		s.mu.Lock()
		flushing := s.closing && !s.closed
		s.mu.Unlock()
		if flushing {
			<-s.closedCh // the writer closes after the last reply is out
		} else {
			s.close(reason)
		}
		s.ended()
	}()
	lr := message.NewLineReader(lineSource(s.conn, s.raw, false), srv.cfg.MaxLineLength)
	authDeadline := s.createdAt.Add(srv.t().authorizeTimeout)
	for {
		if lr.Buffered() == 0 {
			deadline := time.Now().Add(srv.t().idleTimeout)
			if len(s.workers) == 0 && authDeadline.Before(deadline) {
				deadline = authDeadline
			}
			_ = s.conn.SetReadDeadline(deadline)
		}
		// Checked after setting the deadline: Shutdown sets closing before
		// it moves every read deadline to now, so a read cannot outlive it.
		if srv.closing.Load() {
			reason = CloseShutdown
			s.queueReconnect()
			s.closeAfterFlush(CloseShutdown)
			<-s.closedCh
			return
		}
		if !s.waitSlot() {
			s.mu.Lock()
			reason = s.reason
			s.mu.Unlock()
			return
		}
		line, err := lr.ReadLine()
		if err != nil {
			reason = s.readErrorReason(err)
			if reason == CloseShutdown {
				s.queueReconnect()
				s.closeAfterFlush(CloseShutdown)
				<-s.closedCh
			}
			return
		}
		if !srv.dispatch(s, line) {
			s.mu.Lock()
			reason = s.reason
			s.mu.Unlock()
			return
		}
	}
}

// ended unregisters a closed session and counts its close.
func (s *Session) ended() {
	srv := s.srv
	s.mu.Lock()
	reason := s.reason
	s.mu.Unlock()
	srv.unregister(s)
	srv.stats.Closes[reason].Add(1)
	if ce := srv.log.Check(zap.DebugLevel, "connection closed"); ce != nil {
		ce.Write(zap.String("remote", s.conn.RemoteAddr().String()), zap.Stringer("reason", reason))
	}
	srv.wg.Done()
}

func (s *Session) readErrorReason(err error) CloseReason {
	s.mu.Lock()
	closed, r := s.closed, s.reason
	s.mu.Unlock()
	switch {
	case closed:
		return r
	case s.srv.closing.Load():
		return CloseShutdown
	case errors.Is(err, message.ErrLineTooLong):
		return CloseLineTooLong
	case errors.Is(err, os.ErrDeadlineExceeded):
		if len(s.workers) == 0 {
			return CloseAuthorizeTimeout
		}
		return CloseIdle
	case errors.Is(err, io.EOF):
		return CloseClient
	default:
		return CloseReadError
	}
}

// send writes one reply line to the miner, or queues it for the writer,
// behind the replies still waiting for a share (pipeline.go). A queue over
// its byte limit closes the session (slow consumer) instead of growing or
// blocking.
func (s *Session) send(line []byte) {
	s.mu.Lock()
	s.replyLocked(line)
	s.mu.Unlock()
}

// enqueueLocked writes line straight to the socket from the calling
// goroutine (the broadcaster, or the handler answering a request) when
// nothing is queued and no writer goroutine runs: one non-blocking write,
// which saves waking a writer goroutine per line. Whatever the kernel does
// not take at once is queued for the writer, which owns the socket (and
// its write deadline) until the queue is empty again, so lines stay in
// order and a stalled miner still fills its queue and is closed rather than
// blocking the caller.
func (s *Session) enqueueLocked(line []byte) {
	if s.closed {
		return
	}
	if !s.writing && len(s.out) == 0 && s.raw != nil {
		n, err := writeNow(s.raw, line)
		if err != nil && err != errWouldBlock {
			s.closeLocked(CloseWriteError)
			return
		}
		if n == len(line) {
			s.srv.stats.DirectWrites.Add(1)
			if !s.tipSeen.IsZero() {
				s.srv.stats.TipToNotify.Observe(time.Since(s.tipSeen))
				s.tipSeen = time.Time{}
			}
			return
		}
		line = line[n:] // the shared notify line is only read, never written
	}
	if s.outBytes+len(line) > s.srv.cfg.MaxPending { // fixed: queues are sized by it
		s.closeLocked(CloseSlowConsumer)
		return
	}
	s.out = append(s.out, line)
	s.outBytes += len(line)
	if !s.writing {
		s.writing = true
		go s.writeLoop()
	}
}

// writeLoop writes queued lines until the queue is empty; it must be run as
// a goroutine and is the only writer to the socket while it runs. At most
// one runs per session (guarded by writing).
func (s *Session) writeLoop() {
	var spare [][]byte
	for {
		s.mu.Lock()
		if s.closed || len(s.out) == 0 {
			s.writing = false
			if s.closing && !s.closed && !s.repliesPendingLocked() {
				s.closeLocked(s.reason)
			} else if !s.closed && s.raw != nil {
				// Clear our deadline while we still own the socket: an
				// expired one would make the next direct write fall back
				// to the queue (see writeNow).
				_ = s.conn.SetWriteDeadline(time.Time{})
			}
			if s.out == nil && spare != nil {
				s.out = spare[:0]
			}
			s.mu.Unlock()
			return
		}
		bufs := s.out
		s.out = spare
		s.outBytes = 0
		tip := s.tipSeen
		s.tipSeen = time.Time{}
		s.mu.Unlock()

		_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
		s.srv.stats.WriterFlushes.Add(1)
		nb := net.Buffers(bufs)
		if _, err := nb.WriteTo(s.conn); err != nil {
			s.close(CloseWriteError)
			continue
		}
		if !tip.IsZero() {
			s.srv.stats.TipToNotify.Observe(time.Since(tip))
		}
		clear(bufs)
		spare = bufs[:0]
	}
}

// close closes the connection now with reason (the first reason wins).
func (s *Session) close(reason CloseReason) {
	s.mu.Lock()
	s.closeLocked(reason)
	s.mu.Unlock()
}

func (s *Session) closeLocked(reason CloseReason) {
	if s.closed {
		return
	}
	if !s.closing {
		s.reason = reason
	}
	s.closed = true
	s.out = nil
	s.outBytes = 0
	s.conn.Close()
	if s.closedCh != nil {
		close(s.closedCh)
	}
	s.wakeLocked() // an event-loop session has no reader to notice
}

// closeAfterFlush closes once queued lines are written, and the shares in
// flight are answered (pipeline.go closes when the last one is).
func (s *Session) closeAfterFlush(reason CloseReason) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.closing {
		return
	}
	s.closing = true
	s.reason = reason
	if !s.writing && !s.repliesPendingLocked() {
		s.closeLocked(reason)
	}
}

// beginShutdown queues client.reconnect and wakes the reader.
func (s *Session) beginShutdown() {
	s.queueReconnect()
	// The reader (or the handler serving an event-loop session) notices
	// at its next read, or right after the request it is handling, and
	// closes once the queue is flushed.
	if s.ev != nil {
		s.mu.Lock()
		s.wakeLocked()
		s.mu.Unlock()
		return
	}
	_ = s.conn.SetReadDeadline(time.Now())
}

// queueReconnect queues client.reconnect once, unless the session is
// already closing. The reader calls it too: it can see the server closing
// before Shutdown reaches this session, and must not close without it.
func (s *Session) queueReconnect() {
	s.mu.Lock()
	if !s.closed && !s.closing && !s.reconnectQueued {
		s.reconnectQueued = true
		// Behind the replies to shares in flight: a miner told to
		// reconnect first might drop the connection before hearing them.
		s.replyLocked(message.AppendReconnect(nil, "", 0, s.srv.cfg.ReconnectWait))
	}
	s.mu.Unlock()
}

// start sends the difficulty and the current job once the miner is
// subscribed and authorized. running is set before the job is chosen, under
// mu: a Publish racing with it either finds the session running (and queues
// its job after ours) or has already stored its job where we read it.
func (s *Session) start() {
	if !s.subscribed || len(s.workers) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return
	}
	s.running = true
	b := s.difficultyLineLocked(nil)
	jl := s.srv.current.Load()
	if jl == nil {
		if job := s.srv.cfg.Jobs.Current(); job != nil {
			jl = s.srv.linesFor(job)
		}
	}
	if jl != nil {
		s.rememberJobLocked(jl)
		b = append(b, jl.cleanLine...) // one write for both lines
	}
	s.enqueueLocked(b)
}

// sendJob queues a published job (called by the broadcaster).
func (s *Session) sendJob(jl *jobLines, tipSeen time.Time) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running || s.closed || s.closing {
		return
	}
	if v := &s.srv.t().vardiff; !v.Disabled && now.Sub(s.vdStart) >= v.RetargetTime {
		s.retargetLocked(now)
	}
	line := jl.line // shared by every session: only read
	if !s.diffSent {
		// set_difficulty and the job in one write.
		line = append(s.difficultyLineLocked(make([]byte, 0, 64+len(jl.line))), jl.line...)
	}
	s.rememberJobLocked(jl)
	if !tipSeen.IsZero() {
		s.tipSeen = tipSeen
	}
	s.enqueueLocked(line)
}

// difficultyLineLocked appends set_difficulty with the current value to b
// for the caller to send; jobs sent after it are judged at it.
func (s *Session) difficultyLineLocked(b []byte) []byte {
	b = message.AppendSetDifficulty(b, s.diff)
	s.diffSent = true
	if err := s.shares.SetDifficulty(s.diff); err != nil {
		// Clamping keeps s.diff positive and finite; this is a bug.
		s.srv.log.Error("set share difficulty", zap.Float64("difficulty", s.diff), zap.Error(err))
	}
	return b
}

// rememberJobLocked records that a job was sent: the shares.Session judges
// its shares at the current difficulty, and a clean job makes older ones
// stale.
func (s *Session) rememberJobLocked(jl *jobLines) {
	s.shares.AddJob(jl.work)
}

// setDifficulty applies a difficulty decided outside vardiff (suggestion,
// d= password, minimum-difficulty). Before the first job it only sets the
// start value; afterwards the new value is sent at once, followed by the
// current job again, so the miner works at it without waiting for a new job.
func (s *Session) setDifficulty(d float64) {
	job := s.srv.cfg.Jobs.Current()
	s.mu.Lock()
	defer s.mu.Unlock()
	d = s.clampLocked(d)
	if d == s.diff {
		return
	}
	s.diff = d
	s.vdStart, s.vdShares = time.Now(), 0
	if !s.running {
		return
	}
	b := s.difficultyLineLocked(nil)
	if job != nil {
		if jl := s.srv.linesFor(job); jl != nil {
			s.rememberJobLocked(jl)
			b = append(b, jl.cleanLine...) // one write for both lines
		}
	}
	s.enqueueLocked(b)
}

func (s *Session) clampLocked(d float64) float64 {
	p := &s.srv.t().ports[s.port]
	lo := max(p.MinDifficulty, s.minDiff)
	hi := p.MaxDifficulty
	if lo > hi {
		lo = hi
	}
	return min(max(d, lo), hi)
}

// accountShareLocked feeds vardiff with a share once it is durable.
func (s *Session) accountShareLocked(now time.Time) {
	v := &s.srv.t().vardiff
	if v.Disabled {
		return
	}
	s.vdShares++
	if s.vdShares >= v.RetargetShares || now.Sub(s.vdStart) >= v.RetargetTime {
		s.retargetLocked(now)
	}
}

// retargetLocked moves the difficulty toward one share per TargetInterval,
// by at most MaxStep either way, within the port's and the miner's bounds.
// The new value is sent before the next job and applies to it.
func (s *Session) retargetLocked(now time.Time) {
	v := &s.srv.t().vardiff
	elapsed := now.Sub(s.vdStart).Seconds()
	n := s.vdShares
	s.vdStart, s.vdShares = now, 0
	if elapsed <= 0 {
		return
	}
	var nd float64
	if n == 0 {
		nd = s.diff / v.MaxStep
	} else {
		nd = s.diff * float64(n) / elapsed * v.TargetInterval.Seconds()
	}
	nd = min(max(nd, s.diff/v.MaxStep), s.diff*v.MaxStep)
	nd = s.clampLocked(nd)
	// Hysteresis: ignore changes within a factor 1.5 either way, so random
	// share timing does not resend set_difficulty every retarget.
	if nd > s.diff/1.5 && nd < s.diff*1.5 {
		return
	}
	s.diff = nd
	s.diffSent = false
}

// handle processes one line; false means the session must end (its reason
// is set). params is the caller's array for the request's params (see
// message.DecodeReusing), kept for the next line.
func (s *Session) handle(line []byte, params *[]json.RawMessage) bool {
	if len(bytes.TrimSpace(line)) == 0 {
		return true
	}
	req, err := message.DecodeReusing(line, (*params)[:0])
	if cap(req.Params) > cap(*params) {
		*params = req.Params[:0]
	}
	if errors.Is(err, message.ErrResponse) {
		return true // an answer to a request we never send; ignore it
	}
	if err != nil {
		s.protoErrors++
		s.send(message.AppendError(nil, req.ID, message.CodeOther, "Malformed request"))
		if s.protoErrors >= s.srv.t().maxProtocolErrors {
			s.closeAfterFlush(CloseProtocolViolation)
			return false
		}
		return true
	}
	switch req.Method {
	case message.MethodSubscribe:
		s.handleSubscribe(&req)
	case message.MethodAuthorize:
		s.handleAuthorize(&req)
	case message.MethodConfigure:
		s.handleConfigure(&req)
	case message.MethodSuggestDifficulty:
		s.handleSuggestDifficulty(&req)
	case message.MethodSuggestTarget:
		s.handleSuggestTarget(&req)
	case message.MethodExtranonceSubscribe:
		s.extranonceSub = true
		s.replyTrue(&req)
		if s.subscribed {
			s.send(message.AppendSetExtranonce(nil, hex.EncodeToString(s.en1Bytes[:]), s.en2Size))
		}
	case message.MethodSubmit:
		return s.handleSubmit(&req)
	default:
		s.replyError(&req, message.CodeOther, "Method not found")
	}
	return true
}

func (s *Session) replyTrue(req *message.Request) {
	if req.IsNotification() {
		return
	}
	s.send(message.AppendTrue(nil, req.ID))
}

func (s *Session) replyError(req *message.Request, code int, msg string) {
	if req.IsNotification() {
		return
	}
	s.send(message.AppendError(nil, req.ID, code, msg))
}

func (s *Session) handleSubscribe(req *message.Request) {
	if !s.subscribed {
		ua, _ := req.String(0)
		if len(ua) > 128 {
			ua = ua[:128]
		}
		s.userAgent = ua
		// params[1], a session id to resume, is ignored: see allocExtranonce1.
		s.en1 = s.srv.allocExtranonce1()
		binary.BigEndian.PutUint32(s.en1Bytes[:], s.en1)
		s.en2Size = s.srv.cfg.Extranonce2Size
		if job := s.srv.cfg.Jobs.Current(); job != nil {
			s.en2Size = job.Extranonce2Size
		}
		mask := s.srv.cfg.VersionMask // see doc.go: rolling without configure
		if s.configured {
			mask = s.versionMask
		}
		st, err := s.srv.cfg.Validator.NewSession(s.en1Bytes[:], mask)
		if err != nil {
			s.srv.log.Error("new share session", zap.Error(err))
			s.replyError(req, message.CodeOther, "Internal error")
			return
		}
		s.mu.Lock()
		s.shares = st
		s.mu.Unlock()
		s.subscribed = true
	}
	en1 := hex.EncodeToString(s.en1Bytes[:])
	var b []byte
	b = append(b, `[[["mining.set_difficulty","`...)
	b = append(b, en1...)
	b = append(b, `"],["mining.notify","`...)
	b = append(b, en1...)
	b = append(b, `"]],"`...)
	b = append(b, en1...)
	b = append(b, `",`...)
	b = strconv.AppendInt(b, int64(s.en2Size), 10)
	b = append(b, ']')
	if !req.IsNotification() {
		s.send(message.AppendResult(nil, req.ID, b))
	}
	s.start()
}

func (s *Session) handleSuggestDifficulty(req *message.Request) {
	d, ok := req.Number(0)
	if !ok || !(d > 0) {
		s.replyError(req, message.CodeOther, "Invalid difficulty")
		return
	}
	s.setDifficulty(d)
	s.replyTrue(req)
}
