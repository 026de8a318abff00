//go:build unix

package stratum

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// rawConnOf returns the socket of conn for direct writes, or nil when conn
// is not a plain TCP connection (TLS goes through the writer goroutine:
// its records cannot be written half by one goroutine and half by another).
func rawConnOf(conn net.Conn) syscall.RawConn {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// errWouldBlock means the socket cannot go on now: on a write, its buffer
// is full (nothing was written; the caller queues the line for the writer
// goroutine); on a read under the event loop, no data is there (the
// session goes back to the epoll set).
var errWouldBlock = errors.New("socket would block")

// writeNow makes one non-blocking write(2) of b on rc and returns how much
// the kernel took. It never waits: a full socket buffer returns
// errWouldBlock, and so does a socket the runtime refuses to write now (an
// expired write deadline left by the writer goroutine), so the caller falls
// back to the queue, whose writer sets a fresh deadline. Other errors are
// the connection's (reset, broken pipe).
func writeNow(rc syscall.RawConn, b []byte) (int, error) {
	d := directPool.Get().(*directWrite)
	d.b = b
	err := rc.Write(d.fn)
	n, werr := d.n, d.err
	*d = directWrite{fn: d.fn}
	directPool.Put(d)
	if err != nil {
		return 0, errWouldBlock
	}
	switch {
	case werr == nil:
		return n, nil
	case errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EINTR):
		return 0, errWouldBlock
	default:
		return 0, werr
	}
}

// directWrite is the callback of one RawConn.Write with its arguments and
// results. Pooled, with the method value bound once, so a direct write
// allocates nothing (a closure passed to RawConn.Write escapes).
type directWrite struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (d *directWrite) write(fd uintptr) bool {
	d.n, d.err = syscall.Write(int(fd), d.b)
	return true // done either way: never park on the poller
}

var directPool = sync.Pool{New: func() any {
	d := new(directWrite)
	d.fn = d.write
	return d
}}

// readyConn is a plain TCP connection as a message.ReadyReader: the wait for
// a miner's next line happens in the runtime's poller with no buffer held,
// and the line is read with one read(2) into a pooled buffer taken once it
// is there. Only the session's reader uses it; the callbacks are bound once.
//
// Under the event loop (nonblock) it never waits: a read that finds no data
// returns errWouldBlock and the session goes back to the loop's epoll set.
type readyConn struct {
	net.Conn
	rc       syscall.RawConn
	nonblock bool // event loop: never wait in the runtime's poller
	// drained: the last read returned less than it asked for, so the
	// socket most likely has nothing more; the event loop re-arms without
	// a read that would only say EAGAIN (epoll is level-triggered: data
	// that did arrive meanwhile wakes the session at once).
	drained bool
	take    func() *[]byte
	give    func(*[]byte)
	buf     *[]byte
	p       []byte // Read's destination
	n       int
	err     error
	fn      func(fd uintptr) bool // read into a taken buffer (ReadReady)
	rawFn   func(fd uintptr) bool // read into p (Read)
}

// lineSource is what a session's LineReader reads: the connection, as a
// readyConn when it is a plain TCP socket (non-blocking under the event
// loop).
func lineSource(conn net.Conn, rc syscall.RawConn, nonblock bool) io.Reader {
	if rc == nil {
		return conn
	}
	c := &readyConn{Conn: conn, rc: rc, nonblock: nonblock}
	c.fn = c.read
	c.rawFn = c.readInto
	return c
}

// ReadReady implements message.ReadyReader.
func (c *readyConn) ReadReady(take func() *[]byte, give func(*[]byte)) (*[]byte, int, error) {
	c.take, c.give = take, give
	err := c.rc.Read(c.fn) // the read deadline applies to the wait
	b, n, rerr := c.buf, c.n, c.err
	c.take, c.give, c.buf, c.n, c.err = nil, nil, nil, 0, nil
	return c.result(b, n, err, rerr)
}

// Read reads into p: from the connection (waiting, under its deadline), or
// under the event loop with one non-blocking read(2).
func (c *readyConn) Read(p []byte) (int, error) {
	if !c.nonblock {
		return c.Conn.Read(p)
	}
	c.p = p
	err := c.rc.Read(c.rawFn)
	n, rerr := c.n, c.err
	c.p, c.n, c.err = nil, 0, nil
	_, n, err = c.result(nil, n, err, rerr)
	return n, err
}

func (c *readyConn) result(b *[]byte, n int, err, rerr error) (*[]byte, int, error) {
	switch {
	case err != nil:
		return b, 0, err
	case rerr == syscall.EAGAIN:
		return b, 0, errWouldBlock
	case rerr != nil:
		return b, 0, &net.OpError{Op: "read", Net: "tcp", Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return b, 0, io.EOF
	}
	return b, n, nil
}

// read is the ReadReady callback: false asks the poller to wait for data.
func (c *readyConn) read(fd uintptr) bool {
	b := c.take()
	for {
		n, err := syscall.Read(int(fd), *b)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			c.give(b) // wait without it
			if c.nonblock {
				c.err = err
				return true
			}
			return false
		case err != nil:
			c.give(b)
			c.err = err
			return true
		}
		c.buf, c.n = b, n
		c.drained = n < len(*b)
		return true
	}
}

// Drained reports whether the last read took less than it asked for: the
// socket had nothing more then.
func (c *readyConn) Drained() bool { return c.drained }

// readInto is Read's callback under the event loop: one read, never a wait.
func (c *readyConn) readInto(fd uintptr) bool {
	for {
		n, err := syscall.Read(int(fd), c.p)
		if err == syscall.EINTR {
			continue
		}
		c.n, c.err = n, err
		c.drained = err == nil && n < len(c.p)
		return true
	}
}
