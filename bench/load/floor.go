package load

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"time"

	"github.com/lode-pool/lode/blocktemplate"
)

// FloorServer is the fan-out floor: it accepts connections and writes a
// given line to all of them, split over GOMAXPROCS goroutines, with no pool
// logic at all (no sessions, no queues, no per-connection goroutines). A
// pool's new-block fan-out is compared against it on the same machine.
type FloorServer struct {
	l    net.Listener
	mu   sync.Mutex
	cs   []net.Conn
	done chan struct{}

	// Echo mode (ListenEcho): answer requests, no validation.
	echo   bool
	notify []byte
	diff   float64
	wg     sync.WaitGroup
}

// ListenFloor starts a floor server on addr (e.g. 127.0.0.1:0).
func ListenFloor(addr string) (*FloorServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen floor server %s: %w", addr, err)
	}
	f := &FloorServer{l: l, done: make(chan struct{})}
	go f.accept()
	return f, nil
}

func (f *FloorServer) accept() {
	defer close(f.done)
	for {
		c, err := f.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		f.mu.Lock()
		f.cs = append(f.cs, c)
		f.mu.Unlock()
		if f.echo {
			f.wg.Add(1)
			go f.serveEcho(c)
		}
	}
}

// ListenEcho starts the submit-path floor: a bare JSON line server with one
// goroutine and a 4 KiB buffer per connection that decodes each request
// with encoding/json and answers it (subscribe with a fixed extranonce1,
// configure granting version rolling, everything else true), sending
// set_difficulty diff and the notify line after authorize. It validates
// nothing: the cost of line handling alone, to compare a pool's share path
// against on the same machine.
func ListenEcho(addr string, notify []byte, diff float64) (*FloorServer, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen echo server %s: %w", addr, err)
	}
	f := &FloorServer{l: l, done: make(chan struct{}), echo: true, notify: notify, diff: diff}
	go f.accept()
	return f, nil
}

func (f *FloorServer) serveEcho(c net.Conn) {
	defer f.wg.Done()
	br := bufio.NewReaderSize(c, 4096)
	var out []byte
	var n uint32
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		var ok bool
		if out, ok = f.echoReply(out[:0], line, &n); !ok {
			return
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

// echoReply appends the echo server's answer to one request line to out;
// false if the line is not JSON. n counts the connection's subscribes.
func (f *FloorServer) echoReply(out, line []byte, n *uint32) ([]byte, bool) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if json.Unmarshal(line, &req) != nil {
		return out, false
	}
	out = append(out, `{"id":`...)
	out = append(out, req.ID...)
	switch req.Method {
	case "mining.subscribe":
		*n++
		out = fmt.Appendf(out, `,"result":[[["mining.notify","%08x"]],"%08x",8],"error":null}`+"\n", *n, *n)
	case "mining.configure":
		out = append(out, `,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}`+"\n"...)
	default:
		out = append(out, `,"result":true,"error":null}`+"\n"...)
	}
	if req.Method == "mining.authorize" {
		out = fmt.Appendf(out, `{"id":null,"method":"mining.set_difficulty","params":[%g]}`+"\n", f.diff)
		out = append(out, f.notify...)
	}
	return out, true
}

// Addr returns the listening address.
func (f *FloorServer) Addr() string { return f.l.Addr().String() }

// Conns returns the number of accepted connections.
func (f *FloorServer) Conns() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cs)
}

// Broadcast writes line to every connection and returns how long the writes
// took; write errors are counted, not retried.
func (f *FloorServer) Broadcast(line []byte) (time.Duration, int) {
	f.mu.Lock()
	cs := f.cs
	f.mu.Unlock()
	start := time.Now()
	workers := max(1, min(runtime.GOMAXPROCS(0), (len(cs)+255)/256))
	chunk := (len(cs) + workers - 1) / workers
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i := 0; i < len(cs); i += chunk {
		part := cs[i:min(i+chunk, len(cs))]
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for _, c := range part {
				_ = c.SetWriteDeadline(start.Add(10 * time.Second))
				if _, err := c.Write(line); err != nil {
					n++
				}
			}
			mu.Lock()
			failed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	return time.Since(start), failed
}

// Close stops accepting and closes every connection.
func (f *FloorServer) Close() {
	f.l.Close()
	<-f.done
	f.mu.Lock()
	for _, c := range f.cs {
		c.Close()
	}
	f.cs = nil
	f.mu.Unlock()
	f.wg.Wait()
}

// NotifyLineFor renders job's notify line with prevhash bytes 28..31 set
// from seq (so each floor broadcast is a distinct block).
func NotifyLineFor(job *blocktemplate.Job, seq int) ([]byte, error) {
	if job == nil {
		return nil, errors.New("no job")
	}
	j := *job
	j.PrevHash[28], j.PrevHash[29], j.PrevHash[30], j.PrevHash[31] = byte(seq>>24), byte(seq>>16), byte(seq>>8), byte(seq)
	j.CleanJobs = true
	line, err := json.Marshal(map[string]any{"id": nil, "method": "mining.notify", "params": j.Notify().Params()})
	if err != nil {
		return nil, fmt.Errorf("encode notify: %w", err)
	}
	return append(line, '\n'), nil
}
