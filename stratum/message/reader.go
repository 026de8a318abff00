package message

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// DefaultMaxLine is the default maximum length of one client line. Client
// messages are small; a longer line is a protocol violation.
const DefaultMaxLine = 16 << 10

// ErrLineTooLong is returned by ReadLine when a line exceeds the maximum.
var ErrLineTooLong = errors.New("stratum line too long")

// LineReader splits a byte stream into newline-terminated lines. It starts
// with a small buffer and grows it only when a line needs it, and gives the
// big buffer back once drained, so an idle connection holds little memory.
// It is not safe for concurrent use.
type LineReader struct {
	r     io.Reader
	ready ReadyReader // r, when it can wait for data without a buffer
	max   int
	buf   []byte
	bufp  *[]byte // buf's pool entry, kept so that giving it back allocates nothing
	start int     // first unconsumed byte
	end   int     // end of valid data
	scan  int     // bytes in buf[start:end] already searched for '\n'
	// wait receives the first bytes after the reader has drained: an idle
	// connection blocks in Read on this small array and holds no buffer.
	wait [waitSize]byte
}

// initialSize is the buffer a connection gets while it has data pending;
// most client lines (subscribe, authorize, submit) fit in it. Buffers of
// this size are pooled, so idle connections share none.
const initialSize = 512

// waitSize is the read an idle connection blocks on. Small, because every
// idle connection carries it; the rest of a line arrives with the next Read
// (one extra read call per burst of lines, the price of not holding a
// buffer per idle connection).
const waitSize = 16

var bufPool = sync.Pool{New: func() any { b := make([]byte, initialSize); return &b }}

// ReadyReader is an optional interface of a LineReader's source. ReadReady
// waits until data can be read and only then takes a buffer (take), reads
// into it and returns it with n and err as Read would; a buffer it took but
// did not fill goes back through give before it waits again. A drained
// connection waiting for its next line then holds no buffer, and its next
// line is read with one call instead of a small one and the rest (a paced
// miner pays this per share). stratum implements it over the socket.
type ReadyReader interface {
	ReadReady(take func() *[]byte, give func(*[]byte)) (buf *[]byte, n int, err error)
}

func takeBuf() *[]byte { return bufPool.Get().(*[]byte) }

func giveBuf(b *[]byte) { bufPool.Put(b) }

// NewLineReader returns a reader of lines of at most maxLine bytes (newline
// excluded); maxLine <= 0 means DefaultMaxLine.
func NewLineReader(r io.Reader, maxLine int) *LineReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	rr, _ := r.(ReadyReader)
	return &LineReader{r: r, ready: rr, max: maxLine}
}

// Source returns the reader the lines come from.
func (l *LineReader) Source() io.Reader { return l.r }

// Buffered reports how many unread bytes are held.
func (l *LineReader) Buffered() int { return l.end - l.start }

// ReadLine returns the next line without its trailing "\n" (and "\r").
// The returned slice is valid until the next call. Several lines read in one
// Read are returned one per call without reading again; a line split across
// reads is reassembled. A line longer than the maximum returns
// ErrLineTooLong; the reader is unusable after that.
func (l *LineReader) ReadLine() ([]byte, error) {
	for {
		if l.end > l.start {
			if i := bytes.IndexByte(l.buf[l.start+l.scan:l.end], '\n'); i >= 0 {
				lineEnd := l.start + l.scan + i
				line := l.buf[l.start:lineEnd]
				l.start = lineEnd + 1
				l.scan = 0
				if n := len(line); n > 0 && line[n-1] == '\r' {
					line = line[:n-1]
				}
				if len(line) > l.max {
					return nil, ErrLineTooLong
				}
				return line, nil
			}
			l.scan = l.end - l.start
			if l.scan > l.max {
				return nil, ErrLineTooLong
			}
		}
		if err := l.fill(); err != nil {
			return nil, err
		}
	}
}

func (l *LineReader) fill() error {
	if l.start == l.end {
		l.start, l.end, l.scan = 0, 0, 0
		l.release()
	}
	if l.buf == nil && l.ready != nil {
		// Idle: wait without a buffer, read the lines into one taken
		// once they are here.
		bp, n, err := l.ready.ReadReady(takeBuf, giveBuf)
		if n == 0 {
			if bp != nil {
				giveBuf(bp)
			}
			if err == nil {
				err = io.ErrNoProgress
			}
			return err
		}
		l.bufp, l.buf, l.end = bp, (*bp)[:initialSize], n
		return nil
	}
	if l.buf == nil {
		// Idle: block on the small array, take a buffer once data is here.
		n, err := l.r.Read(l.wait[:])
		if n == 0 {
			return err
		}
		l.bufp = takeBuf()
		l.buf = (*l.bufp)[:initialSize]
		l.end = copy(l.buf, l.wait[:n])
		return nil
	}
	if l.start > 0 && l.end == len(l.buf) {
		n := copy(l.buf, l.buf[l.start:l.end])
		l.start, l.end = 0, n
	}
	if l.end == len(l.buf) {
		size := 2 * len(l.buf)
		if limit := l.max + 2; size > limit {
			size = limit
		}
		if size <= len(l.buf) {
			return ErrLineTooLong
		}
		nb := make([]byte, size)
		copy(nb, l.buf[l.start:l.end])
		l.end -= l.start
		l.start = 0
		if l.bufp != nil {
			giveBuf(l.bufp)
			l.bufp = nil
		}
		l.buf = nb
	}
	n, err := l.r.Read(l.buf[l.end:])
	l.end += n
	if n > 0 {
		return nil
	}
	return err
}

// Release gives the reader's buffer back, pending bytes and all: call it
// once the connection is closed. The reader starts empty if used again.
func (l *LineReader) Release() {
	l.start, l.end, l.scan = 0, 0, 0
	l.release()
}

// release gives the buffer back while nothing is pending: initial-size
// buffers to the pool, grown ones to the garbage collector.
func (l *LineReader) release() {
	if l.buf == nil {
		return
	}
	if l.bufp != nil {
		giveBuf(l.bufp)
		l.bufp = nil
	}
	l.buf = nil
}
