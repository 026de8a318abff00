package stratum

import (
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// Pipelining: a connection's accepted shares wait for the recorder while its
// reader goes on. Every reply to a request made while a share is in flight
// takes a slot in the session's reply queue (pend), in request order; a
// share's slot is filled when the recorder answers (ShareDone), and the
// ready slots at the head of the queue are written together. Slot k of the
// queue has token pendTok+k, so a completion finds its slot without a
// search or a map.

// pendingReply is one reply slot.
type pendingReply struct {
	line  []byte // the reply (nil for a notification: nothing to write)
	ready bool
	share bool // a share waiting for the recorder
	idLen int  // a share's reply is {"id":<id>,…; the id's length in line
	diff  float64
	start time.Time // when the submit was read, for Stats.Submit
}

// completion is the session as the recorder's shares.RecordDone (a
// conversion, so handing it over allocates nothing).
type completion Session

// recordShare takes a reply slot for an accepted share and hands the share
// to the recorder.
func (s *Session) recordShare(req *message.Request, sh *shares.Share, start time.Time) {
	var line []byte
	if !req.IsNotification() {
		line = message.AppendTrue(make([]byte, 0, 40+len(req.ID)), req.ID)
	}
	s.mu.Lock()
	tok := s.pendTok + uint64(len(s.pend)-s.pendHead)
	s.pend = append(s.pend, pendingReply{line: line, share: true, idLen: len(req.ID), diff: sh.Difficulty, start: start})
	s.mu.Unlock()
	if err := s.srv.cfg.Recorder.RecordAsync(sh, (*completion)(s), tok); err != nil {
		(*completion)(s).ShareDone(tok, err)
	}
}

// ShareDone implements shares.RecordDone: the share of slot token is durable
// (err nil) or failed. It runs on the recorder's goroutine.
func (c *completion) ShareDone(token uint64, err error) {
	s := (*Session)(c)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.pendHead + int(token-s.pendTok)
	if token < s.pendTok || i >= len(s.pend) || !s.pend[i].share || s.pend[i].ready {
		s.srv.log.Error("share completion for an unknown reply slot", zap.Uint64("token", token))
		return
	}
	p := &s.pend[i]
	p.ready = true
	if err == nil {
		s.srv.stats.Accepted.Add(1)
		s.srv.stats.addAcceptedDifficulty(p.diff)
		s.accountShareLocked(now)
	} else {
		s.srv.stats.Rejected[message.CodeOther-20].Add(1)
		s.srv.log.Error("record share failed", zap.String("remote", s.ip), zap.Error(err))
		if p.line != nil {
			id := append([]byte(nil), p.line[len(`{"id":`):len(`{"id":`)+p.idLen]...)
			p.line = message.AppendError(p.line[:0], id, message.CodeOther,
				rejectMessage(fmt.Errorf("%w: %v", ErrNotRecorded, err)))
		}
	}
	s.srv.stats.Submit.Observe(now.Sub(p.start))
	s.flushRepliesLocked()
}

// reply sends a reply line in request order: at once when no share is in
// flight, else in a slot behind the pending shares.
func (s *Session) replyLocked(line []byte) {
	if s.pendHead == len(s.pend) {
		s.enqueueLocked(line)
		return
	}
	s.pend = append(s.pend, pendingReply{line: line, ready: true})
}

// flushRepliesLocked writes the ready replies at the head of the queue (in
// one write when there are several), wakes a reader waiting for a slot, and
// closes a session that was waiting for its replies to close.
func (s *Session) flushRepliesLocked() {
	h := s.pendHead
	n, size := 0, 0
	for j := h; j < len(s.pend) && s.pend[j].ready; j++ {
		n++
		size += len(s.pend[j].line)
	}
	if n == 0 {
		return
	}
	switch {
	case size == 0:
	case n == 1:
		s.enqueueLocked(s.pend[h].line)
	default:
		buf := make([]byte, 0, size)
		for j := h; j < h+n; j++ {
			buf = append(buf, s.pend[j].line...)
		}
		s.enqueueLocked(buf)
	}
	clear(s.pend[h : h+n])
	s.pendHead += n
	s.pendTok += uint64(n)
	switch {
	case s.pendHead == len(s.pend):
		if cap(s.pend) > 64 {
			s.pend = nil // a burst is over: give its memory back
		} else {
			s.pend = s.pend[:0]
		}
		s.pendHead = 0
	case s.pendHead >= 32 && 2*s.pendHead >= len(s.pend):
		k := copy(s.pend, s.pend[s.pendHead:])
		clear(s.pend[k:])
		s.pend = s.pend[:k]
		s.pendHead = 0
	}
	if s.slotWaiting && len(s.pend)-s.pendHead < maxPipelined {
		s.slotWaiting = false
		if s.ev != nil {
			s.wakeLocked()
		} else {
			s.slotFree <- struct{}{}
		}
	}
	if s.closing && !s.closed && !s.writing && s.pendHead == len(s.pend) {
		s.closeLocked(s.reason)
	}
}

// repliesPendingLocked reports whether replies wait for a share.
func (s *Session) repliesPendingLocked() bool { return s.pendHead < len(s.pend) }

// waitSlot blocks the reader while the connection has maxPipelined replies
// waiting; false when the session closed meanwhile.
func (s *Session) waitSlot() bool {
	s.mu.Lock()
	for len(s.pend)-s.pendHead >= maxPipelined && !s.closed {
		if s.slotFree == nil {
			s.slotFree = make(chan struct{}, 1)
		}
		s.slotWaiting = true
		s.srv.stats.PipelineStalls.Add(1)
		s.mu.Unlock()
		select {
		case <-s.slotFree:
		case <-s.closedCh:
		}
		s.mu.Lock()
	}
	closed := s.closed
	s.mu.Unlock()
	return !closed
}
