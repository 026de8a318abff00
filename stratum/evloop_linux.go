//go:build linux

package stratum

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// poller is the event loop of Config.ReadLoop "epoll": one epoll set holds
// every plain TCP session that waits for its next line, and one goroutine
// waits on it. The set's own descriptor sits in the runtime's poller, so
// the loop parks like any network goroutine; a ready session goes to a
// handler from the shared pool (Server.resume), which reads and handles its
// lines and puts it back (Session.serve). Each socket is registered
// one-shot: after an event it stays quiet until the handler re-arms it, so
// one handler at a time owns a session.
type poller struct {
	srv    *Server
	epfd   int
	file   *os.File // epfd, as the runtime poller sees it
	rc     syscall.RawConn
	events []syscall.EpollEvent
	n      int                   // events filled by the last wait
	waitFn func(fd uintptr) bool // wait, bound once
	params []json.RawMessage     // the loop's params array (see handlerLoop)

	// Sessions by slot; an event carries its session's slot and
	// generation, so an event of a closed session finds nothing even when
	// its socket's number or its slot was reused.
	mu    sync.Mutex
	slots []*Session
	free  []uint32
	gen   uint32

	stop chan struct{}
	done sync.WaitGroup // the loop and the sweeper
	once sync.Once
}

// epollEvents is what a session waits for: data, or the peer's close.
// Level-triggered: data that arrived while the session was busy wakes it
// as soon as it is re-armed.
const epollEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT

func newPoller(srv *Server) (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("epoll set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "stratum-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("epoll raw conn: %w", err)
	}
	p := &poller{srv: srv, epfd: epfd, file: f, rc: rc, events: make([]syscall.EpollEvent, 256), stop: make(chan struct{})}
	p.waitFn = p.wait
	p.done.Add(2)
	go p.loop()
	go p.sweep()
	return p, nil
}

// close stops the loop and the sweeper; call it once no session is left.
func (p *poller) close() {
	p.once.Do(func() {
		close(p.stop)
		p.file.Close() // wakes the loop with an error
		p.done.Wait()
	})
}

// loop hands each ready session to a handler; it must be run as a
// goroutine and ends when the epoll set is closed.
func (p *poller) loop() {
	defer p.done.Done()
	for {
		if err := p.rc.Read(p.waitFn); err != nil {
			return
		}
		for i := range p.events[:p.n] {
			ev := &p.events[i]
			p.ready(uint32(ev.Fd), uint32(ev.Pad), i == p.n-1)
		}
	}
}

// wait is the loop's RawConn callback: it takes the ready events without
// blocking, and asks the runtime poller to wait (false) when there are
// none.
func (p *poller) wait(fd uintptr) bool {
	n, err := syscall.EpollWait(int(fd), p.events, 0)
	if err != nil && err != syscall.EINTR {
		// Not expected on a valid set: wait for readiness again.
		p.srv.log.Error("epoll_wait failed", zap.Error(err))
		n = 0
	}
	if n <= 0 {
		p.n = 0
		return err == syscall.EINTR
	}
	p.n = n
	return true
}

// ready hands the session in slot to a handler, unless it is gone or
// somebody else (a close, the sweeper, shutdown) took it first. The last
// session of a wait (at a paced pool's rates, the only one) is served on
// the loop itself when it is mining, for up to inlineLines lines: waking
// a handler for one share costs about as much again as handling it. The
// requests of a mining session never wait for long (a full share queue
// is backpressure on every connection anyway); a handshake may (a
// subscribe waits when extranonce1 values run out), so it goes to the pool.
func (p *poller) ready(slot, gen uint32, last bool) {
	p.mu.Lock()
	var s *Session
	if int(slot) < len(p.slots) {
		s = p.slots[slot]
	}
	p.mu.Unlock()
	if s == nil || s.evGen != gen {
		return
	}
	if !s.evState.CompareAndSwap(evArmed, evBusy) {
		return
	}
	if last && s.mining() {
		s.serve(&p.params, inlineLines)
		return
	}
	p.srv.resume(s)
}

// inlineLines bounds the lines the loop handles for one session before it
// hands the rest to the pool, so that one fast connection cannot hold the
// loop (and every other connection's next line) for long.
const inlineLines = 16

// add takes a slot for a new session and arms it with its first read
// deadline; the caller then adds it to the epoll set with rearm.
func (p *poller) add(s *Session, deadline time.Time) {
	p.mu.Lock()
	var slot uint32
	if n := len(p.free); n > 0 {
		slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		slot = uint32(len(p.slots))
		p.slots = append(p.slots, nil)
	}
	p.gen++
	s.ev, s.evSlot, s.evGen = p, slot, p.gen
	s.arm.event = syscall.EpollEvent{Events: epollEvents, Fd: int32(slot), Pad: int32(s.evGen)}
	s.arm.op = syscall.EPOLL_CTL_ADD
	s.arm.fn = s.epollCtl
	p.slots[slot] = s
	p.mu.Unlock()
	s.deadline.Store(deadline.UnixNano())
	s.evState.Store(evArmed)
}

// remove frees the slot of a session that ended.
func (p *poller) remove(s *Session) {
	p.mu.Lock()
	if int(s.evSlot) < len(p.slots) && p.slots[s.evSlot] == s {
		p.slots[s.evSlot] = nil
		p.free = append(p.free, s.evSlot)
	}
	p.mu.Unlock()
}

// rearm puts the session back in the epoll set (the first time: adds it).
// The system call runs under the socket's reference (RawConn.Control), so
// a socket closed meanwhile cannot have its number reused under us.
func (s *Session) rearm() error {
	a := &s.arm
	a.err = nil
	if err := s.raw.Control(a.fn); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	op := a.op
	a.op = syscall.EPOLL_CTL_MOD
	if a.err != nil {
		return fmt.Errorf("epoll_ctl %d: %w", op, a.err)
	}
	return nil
}

// armState is what a session needs to re-arm itself: the event it
// registers (its slot and generation) and the bound Control callback.
type armState struct {
	event syscall.EpollEvent
	op    int
	err   error
	fn    func(fd uintptr)
}

func (s *Session) epollCtl(fd uintptr) {
	s.arm.err = syscall.EpollCtl(s.ev.epfd, s.arm.op, int(fd), &s.arm.event)
}

// expired appends to due the armed sessions whose deadline is before now.
// It scans in chunks, so that the loop, which looks sessions up under the
// same lock, never waits for a whole scan of a large set.
func (p *poller) expired(now int64, due []*Session) []*Session {
	for from := 0; ; from += sweepChunk {
		p.mu.Lock()
		end := min(from+sweepChunk, len(p.slots))
		for _, s := range p.slots[min(from, end):end] {
			if s != nil && s.evState.Load() == evArmed && s.deadline.Load() < now {
				due = append(due, s)
			}
		}
		p.mu.Unlock()
		if end < from+sweepChunk {
			return due
		}
	}
}

// sweepChunk is how many slots the sweeper looks at per hold of the lock.
const sweepChunk = 4096

// sweep closes the sessions whose read deadline passed while they waited in
// the epoll set (the authorize and idle timeouts); it must be run as a
// goroutine. It looks every quarter of the shorter timeout, between 10 ms
// and 1 s, so a deadline is kept to within that.
func (p *poller) sweep() {
	defer p.done.Done()
	var due []*Session
	for {
		t := p.srv.t()
		every := min(max(min(t.authorizeTimeout, t.idleTimeout)/4, 10*time.Millisecond), time.Second)
		select {
		case <-p.stop:
			return
		case <-time.After(every):
		}
		due = p.expired(time.Now().UnixNano(), due)
		for i, s := range due {
			due[i] = nil
			if !s.evState.CompareAndSwap(evArmed, evBusy) {
				continue // woken meanwhile
			}
			// The session may have been woken and armed again with a
			// later deadline since it was looked at: only a deadline
			// still past expires it; otherwise it is served once for
			// nothing (it must be: its epoll event may have been taken
			// by the loop while it was ours).
			s.expired = s.deadline.Load() < time.Now().UnixNano()
			p.srv.resume(s)
		}
		due = due[:0]
	}
}
