package stratum

import (
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Requests are handled on a shared, elastic pool of handler goroutines
// instead of on each connection's reader. Decoding JSON and checking shares
// grows a goroutine's stack to 4 KiB or more, and Go never shrinks a parked
// goroutine's stack below 4 KiB once it has grown; keeping that work off the
// readers lets every idle connection park on a 2 KiB stack. The reader
// waits for its request to be handled before reading the next line, so the
// session's protocol state still has one owner at a time and requests are
// handled in order.

// task is one line handed from a reader to a handler.
type task struct {
	s    *Session
	line []byte
	ok   bool          // false: the session must end
	done chan struct{} // buffered(1); signalled when handled
}

var taskPool = sync.Pool{New: func() any { return &task{done: make(chan struct{}, 1)} }}

// handlerIdle is how long a handler goroutine waits for more work before it
// exits; the pool grows with the number of requests in flight (a submit
// waiting for the recorder holds its handler) and shrinks when idle.
const handlerIdle = 30 * time.Second

// dispatch handles line on a handler goroutine and waits for it. It returns
// false when the session must end.
func (s *Server) dispatch(sess *Session, line []byte) bool {
	t := taskPool.Get().(*task)
	t.s, t.line = sess, line
	select {
	case s.tasks <- t: // an idle handler takes it
	default:
		go s.handlerLoop(t, nil)
	}
	<-t.done
	ok := t.ok
	t.s, t.line = nil, nil
	taskPool.Put(t)
	return ok
}

// handlerLoop handles tasks, and serves event-loop sessions (evloop.go),
// until it has been idle for handlerIdle, starting with t or sess; it must
// be run as a goroutine.
func (s *Server) handlerLoop(t *task, sess *Session) {
	timer := time.NewTimer(handlerIdle)
	defer timer.Stop()
	// The handler's params array, reused request after request: decoding
	// a submit allocates nothing (a request's params are used only while
	// it is handled, like the line they point into).
	var params []json.RawMessage
	for {
		if t != nil {
			t.ok = t.s.handleSafe(t.line, &params)
			t.done <- struct{}{}
		} else {
			sess.serve(&params, 0)
		}
		t, sess = nil, nil
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(handlerIdle)
		select {
		case t = <-s.tasks:
		case sess = <-s.runs:
		case <-timer.C:
			return
		}
	}
}

// handleSafe is handle with a panic turned into a closed session, so a bug
// in one request cannot take the server down.
func (sess *Session) handleSafe(line []byte, params *[]json.RawMessage) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			sess.srv.stats.Panics.Add(1)
			sess.srv.log.Error("session panic", zap.Any("panic", r), zap.Stack("stack"))
			sess.closeAfterFlush(CloseProtocolViolation)
			ok = false
		}
	}()
	return sess.handle(line, params)
}
