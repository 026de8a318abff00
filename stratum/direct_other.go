//go:build !unix

package stratum

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// Direct writes are unix-only; elsewhere every line goes through the
// writer goroutine.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

var errWouldBlock = errors.New("socket would block")

func writeNow(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }

// lineSource is what a session's LineReader reads: the connection itself.
func lineSource(conn net.Conn, _ syscall.RawConn, _ bool) io.Reader { return conn }
