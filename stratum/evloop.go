package stratum

import (
	"encoding/json"
	"os"
	"time"

	"go.uber.org/zap"
)

// Sessions under the event loop (Config.ReadLoop "epoll", evloop_linux.go)
// have no reader goroutine. evState says who owns the session's protocol
// state: a pool handler (busy), the epoll set (armed: waiting for data or
// for its read deadline), or nobody (parked: waiting for a reply slot, or
// for its close once its replies are out). Whoever moves a session out of
// armed or parked with a compare-and-swap owns it and must have a handler
// serve it (Server.resume): the loop on an event, the sweeper at a
// deadline, Shutdown, closeLocked, and a reply that frees a slot. The
// handler that sees it closed ends it (teardown), exactly once.
const (
	evBusy int32 = iota
	evArmed
	evParked
)

// resume has a pool handler serve sess, which the caller owns.
func (s *Server) resume(sess *Session) {
	select {
	case s.runs <- sess:
	default:
		go s.handlerLoop(nil, sess)
	}
}

// serve reads and handles the session's lines until it has to wait, then
// gives it back: to the epoll set (no data), parked (no reply slot, or
// closing once its replies are out), or ended. The caller owns the session.
// After maxLines lines (0: no limit) a session that could go on is handed
// to a pool handler instead.
func (s *Session) serve(params *[]json.RawMessage, maxLines int) {
	srv := s.srv
	// read: a read was made in this run, so drained says whether the
	// socket is empty; the run itself began because epoll saw data.
	read := false
	for lines := 0; ; lines++ {
		if lines == maxLines && maxLines > 0 {
			srv.resume(s)
			return
		}
		if s.expired {
			s.expired = false
			s.finish(s.readErrorReason(os.ErrDeadlineExceeded))
			return
		}
		if srv.closing.Load() {
			s.queueReconnect()
			s.closeAfterFlush(CloseShutdown)
			s.finish(CloseShutdown)
			return
		}
		if !s.mayRead() {
			return
		}
		var line []byte
		err := errWouldBlock
		if !read || s.lr.Buffered() > 0 || !s.drained() {
			line, err = s.lr.ReadLine()
			read = true
		}
		if err == errWouldBlock {
			if s.yield() {
				continue
			}
			return
		}
		if err != nil {
			reason := s.readErrorReason(err)
			if reason == CloseShutdown {
				continue // the shutdown path above
			}
			s.finish(reason)
			return
		}
		if !s.handleSafe(line, params) {
			s.mu.Lock()
			reason := s.reason
			s.mu.Unlock()
			s.finish(reason)
			return
		}
	}
}

// mining reports whether the session is subscribed and authorized.
func (s *Session) mining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// drained reports whether the last read emptied the socket (readyConn).
func (s *Session) drained() bool {
	d, ok := s.lr.Source().(interface{ Drained() bool })
	return ok && d.Drained()
}

// mayRead reports whether the session may read its next line; otherwise
// it has ended, or it is parked: closing (closeLocked resumes it once its
// replies are out) or out of reply slots (flushRepliesLocked resumes it
// when one frees).
func (s *Session) mayRead() bool {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		s.teardown()
		return false
	case s.closing:
		s.evState.Store(evParked)
		s.mu.Unlock()
		return false
	case len(s.pend)-s.pendHead >= maxPipelined:
		s.slotWaiting = true
		s.srv.stats.PipelineStalls.Add(1)
		s.evState.Store(evParked)
		s.mu.Unlock()
		return false
	}
	s.mu.Unlock()
	return true
}

// yield puts the session back in the epoll set to wait for its next line,
// with a fresh read deadline when no partial line is pending. True means
// the caller goes on serving it: shutdown began, and the session was taken
// back before anybody else took it.
func (s *Session) yield() bool {
	srv := s.srv
	if s.lr.Buffered() == 0 {
		// Nothing pending: the read buffer goes back to the pool while
		// the session waits (the reader keeps it when the socket was
		// drained without a read that found it empty).
		s.lr.Release()
		t := srv.t()
		deadline := time.Now().Add(t.idleTimeout)
		if len(s.workers) == 0 {
			if a := s.createdAt.Add(t.authorizeTimeout); a.Before(deadline) {
				deadline = a
			}
		}
		s.deadline.Store(deadline.UnixNano())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.teardown()
		return false
	}
	s.evState.Store(evArmed)
	// Re-armed under mu: whoever takes the session once it is armed (the
	// loop on the event this may fire at once, a close, the sweeper)
	// hands it to a handler that takes mu before it touches anything.
	if err := s.rearm(); err != nil {
		// The socket is closing, or epoll refused it. Closing resumes
		// the armed session, whose handler then ends it.
		srv.log.Warn("re-arm in the epoll set failed; closing", zap.String("remote", s.ip), zap.Error(err))
		s.closeLocked(CloseReadError)
	}
	s.mu.Unlock()
	// Shutdown sets closing before it wakes the armed sessions: either
	// this sees it, or Shutdown finds the session armed.
	return srv.closing.Load() && s.evState.CompareAndSwap(evArmed, evBusy)
}

// finish ends the session with reason, or parks it when it is closing
// once its replies are out (whoever writes the last one closes it, and
// closeLocked resumes it to be ended).
func (s *Session) finish(reason CloseReason) {
	s.mu.Lock()
	if s.closing && !s.closed {
		s.evState.Store(evParked)
		s.mu.Unlock()
		return
	}
	s.closeLocked(reason)
	s.mu.Unlock()
	s.teardown()
}

// teardown ends a closed event-loop session: its buffer goes back, its
// slot is freed, and it is unregistered.
func (s *Session) teardown() {
	s.lr.Release()
	s.ev.remove(s)
	s.ended()
}

// wakeLocked hands an armed or parked session to a handler, which sees why
// (closed, shutdown). Called with mu held.
func (s *Session) wakeLocked() {
	if s.ev == nil {
		return
	}
	if s.evState.CompareAndSwap(evArmed, evBusy) || s.evState.CompareAndSwap(evParked, evBusy) {
		s.srv.resume(s)
	}
}
