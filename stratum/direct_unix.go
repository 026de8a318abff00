//go:build unix

package stratum

import (
	"errors"
	"net"
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

// errWouldBlock means the socket buffer is full: nothing was written and
// the caller queues the line for the writer goroutine.
var errWouldBlock = errors.New("socket buffer full")

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
