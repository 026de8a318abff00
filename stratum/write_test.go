package stratum

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection with small
// buffers, so a few writes fill the sender's.
func tcpPair(t *testing.T) (server *net.TCPConn, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	client, err = d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	server = c.(*net.TCPConn)
	_ = server.SetWriteBuffer(4096)
	return server, client
}

// writeNow must never wait: a full socket buffer and an expired write
// deadline both say "queue it", and a dead peer is an error.
func TestWriteNowNeverBlocks(t *testing.T) {
	srv, cli := tcpPair(t)
	rc := rawConnOf(srv)
	if rc == nil {
		t.Fatal("no raw conn for a TCP connection")
	}
	chunk := make([]byte, 16<<10)
	full := false
	for i := 0; i < 10000 && !full; i++ {
		n, err := writeNow(rc, chunk)
		switch {
		case errors.Is(err, errWouldBlock):
			if n != 0 {
				t.Fatalf("would block after %d bytes", n)
			}
			full = true
		case err != nil:
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if !full {
		t.Fatal("a socket nobody reads never filled")
	}

	// An expired deadline (left by the writer goroutine) falls back too.
	srv2, _ := tcpPair(t)
	_ = srv2.SetWriteDeadline(time.Now().Add(-time.Second))
	if n, err := writeNow(rawConnOf(srv2), []byte("x\n")); n != 0 || !errors.Is(err, errWouldBlock) {
		t.Fatalf("expired deadline: %d %v, want errWouldBlock", n, err)
	}
	_ = srv2.SetWriteDeadline(time.Time{})
	if n, err := writeNow(rawConnOf(srv2), []byte("x\n")); n != 2 || err != nil {
		t.Fatalf("cleared deadline: %d %v", n, err)
	}

	// The peer goes away with unread data (RST): a real error, not "later".
	cli.Close()
	var err error
	for i := 0; i < 1000; i++ {
		if _, err = writeNow(rc, []byte("x\n")); err != nil && !errors.Is(err, errWouldBlock) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err == nil || errors.Is(err, errWouldBlock) {
		t.Fatalf("write to a reset connection: %v", err)
	}
}

// notifyIDs reads c's lines until it has n mining.notify job ids (or the
// connection fails) and returns them in arrival order.
func notifyIDs(c net.Conn, n int) ([]string, error) {
	r := bufio.NewReader(c)
	var ids []string
	for len(ids) < n {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		line, err := r.ReadBytes('\n')
		if err != nil {
			return ids, err
		}
		var m msg
		if err := json.Unmarshal(line, &m); err != nil {
			return ids, fmt.Errorf("bad line %q: %w", line, err)
		}
		if m.Method != "mining.notify" {
			continue
		}
		var p []json.RawMessage
		if err := json.Unmarshal(m.Params, &p); err != nil || len(p) == 0 {
			return ids, fmt.Errorf("bad notify %q", line)
		}
		var id string
		_ = json.Unmarshal(p[0], &id)
		ids = append(ids, id)
	}
	return ids, nil
}

// Lines are written by the broadcaster while the socket is idle and by the
// writer goroutine once it fills: a miner that stops reading is still
// closed as a slow consumer (its queue grows, nobody waits on it), and a
// miner that reads gets every job, in order, across both paths.
func TestDirectWritesFallBackToQueue(t *testing.T) {
	// Bursts stay well under MaxPending, so only the stalled miner, which
	// receives 400 lines (≈ 270 KB), overflows it.
	h := startServer(t, func(c *Config) { c.MaxPending = 32 << 10; c.WriteBuffer = 4096 })
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	slow := &client{t: t, conn: raw, r: bufio.NewReader(raw)}
	slow.handshake(testAddress(t, 70))
	if h.srv.Stats().DirectWrites.Load() == 0 {
		t.Fatal("handshake replies were not written directly to an idle socket")
	}

	reader := dial(t, h.addr)
	reader.handshake(testAddress(t, 71))
	reader.notification("mining.notify") // the job sent at authorize
	const jobs = 400
	type result struct {
		ids []string
		err error
	}
	got := make(chan result, 1)
	go func() {
		// bufio in handshake may hold lines already: start from it.
		ids, err := notifyIDs(&bufferedConn{Conn: reader.conn, r: reader.r}, jobs)
		got <- result{ids, err}
	}()

	flushes := h.srv.Stats().WriterFlushes.Load()
	var want []string
	// Bursts of jobs back to back, so the reading miner's socket is
	// sometimes busy (queue) and sometimes idle (direct).
	for len(want) < jobs {
		for i := 0; i < 10 && len(want) < jobs; i++ {
			j := h.jobs.next(false)
			h.srv.Publish(j)
			want = append(want, j.ID)
		}
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "slow consumer closed", func() bool { return h.srv.Stats().ClosedBy(CloseSlowConsumer) == 1 })
	if h.srv.Stats().WriterFlushes.Load() == flushes {
		t.Fatal("a full socket never fell back to the writer goroutine")
	}
	r := <-got
	if r.err != nil {
		t.Fatalf("reading miner: %v after %d jobs", r.err, len(r.ids))
	}
	if strings.Join(r.ids, ",") != strings.Join(want, ",") {
		t.Fatalf("jobs out of order or missing:\n got %v\nwant %v", r.ids, want)
	}
	if n := h.srv.Stats().ClosedBy(CloseSlowConsumer); n != 1 {
		t.Fatalf("%d slow consumers closed, want only the stalled one", n)
	}
}

// bufferedConn reads through an existing bufio.Reader.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }
