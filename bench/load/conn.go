package load

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// handshake request ids; submits use ids from firstSubmitID on.
const (
	idConfigure = iota + 1
	idSubscribe
	idAuthorize
	idSuggest
	firstSubmitID = 100
)

// conn is one simulated miner. Its reader goroutine owns the read side; the
// mining goroutine owns the write side after the handshake, so writes need
// no lock.
type conn struct {
	r    *Runner
	idx  int
	nc   net.Conn
	user string // the username it authorizes and submits as
	br   *bufio.Reader

	en1     []byte
	en2Size int
	mask    uint32

	job    atomic.Pointer[Job]
	diff   atomic.Uint64 // float64 bits
	jobSig chan struct{} // a new job or difficulty arrived (cap 1)

	// handshake replies, by id.
	hsMu      sync.Mutex
	hsReplies map[int64]chan reply

	// The one outstanding submit.
	sentID  atomic.Int64
	sentAt  atomic.Int64 // unix nanoseconds
	replied chan bool    // true when accepted (cap 1)

	// Pipelined submits (Config.Pipeline > 1): a token per submit in
	// flight, and the send time of each by id modulo len(sentRing).
	pipe     chan struct{}
	sentRing []atomic.Int64

	worker *Worker
	stock  []*Share
	wbuf   []byte
	nextID int64
	prev   string // last prevhash seen, for fan-out
	done   chan struct{}
	err    error // why the reader ended; read after done
}

type reply struct {
	result json.RawMessage
	err    json.RawMessage
}

func (rp reply) code() int {
	if len(rp.err) == 0 || string(rp.err) == "null" {
		return 0
	}
	var arr []json.RawMessage
	if json.Unmarshal(rp.err, &arr) == nil && len(arr) > 0 {
		if c, err := strconv.Atoi(string(arr[0])); err == nil {
			return c
		}
	}
	return -1
}

func (r *Runner) dial(ctx context.Context, idx int) (*conn, error) {
	d := net.Dialer{Timeout: r.cfg.Timeout}
	if n := len(r.cfg.SourceIPs); n > 0 {
		ip := net.ParseIP(r.cfg.SourceIPs[idx%n])
		if ip == nil {
			return nil, fmt.Errorf("source address %q is not an IP", r.cfg.SourceIPs[idx%n])
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.DialContext(ctx, "tcp", r.cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("dial pool %s: %w", r.cfg.Address, err)
	}
	c := &conn{
		r:         r,
		idx:       idx,
		nc:        nc,
		br:        bufio.NewReaderSize(nc, r.cfg.ReadBuffer),
		jobSig:    make(chan struct{}, 1),
		hsReplies: make(map[int64]chan reply),
		replied:   make(chan bool, 1),
		nextID:    firstSubmitID,
		done:      make(chan struct{}),
		user:      r.cfg.Username,
	}
	if r.cfg.WorkerPerConn {
		c.user += strconv.Itoa(idx)
	}
	c.diff.Store(math.Float64bits(1))
	if n := r.cfg.Pipeline; n > 1 {
		c.pipe = make(chan struct{}, n)
		c.sentRing = make([]atomic.Int64, 2*n)
	}
	go c.readLoop()
	if r.cfg.Raw {
		return c, nil
	}
	if err := c.handshake(ctx); err != nil {
		nc.Close()
		<-c.done
		return nil, err
	}
	c.worker = NewWorker(c.en1, c.en2Size, c.mask, uint64(idx))
	return c, nil
}

func (c *conn) handshake(ctx context.Context) error {
	cfg := &c.r.cfg
	type call struct {
		id   int64
		line string
	}
	var calls []call
	if cfg.VersionRolling {
		calls = append(calls, call{idConfigure, `{"id":1,"method":"mining.configure","params":[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":2}]}`})
	}
	ua, _ := json.Marshal(cfg.UserAgent)
	user, _ := json.Marshal(c.user)
	pass, _ := json.Marshal(cfg.Password)
	calls = append(calls,
		call{idSubscribe, `{"id":2,"method":"mining.subscribe","params":[` + string(ua) + `]}`},
		call{idAuthorize, `{"id":3,"method":"mining.authorize","params":[` + string(user) + `,` + string(pass) + `]}`})
	if cfg.SuggestDifficulty > 0 {
		calls = append(calls, call{idSuggest, `{"id":4,"method":"mining.suggest_difficulty","params":[` +
			strconv.FormatFloat(cfg.SuggestDifficulty, 'g', -1, 64) + `]}`})
	}
	// Pipelined like ESP-Miner: every request first, then the replies.
	chans := make([]chan reply, len(calls))
	var buf []byte
	c.hsMu.Lock()
	for i, cl := range calls {
		chans[i] = make(chan reply, 1)
		c.hsReplies[cl.id] = chans[i]
		buf = append(append(buf, cl.line...), '\n')
	}
	c.hsMu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(cfg.Timeout))
	if _, err := c.nc.Write(buf); err != nil {
		return fmt.Errorf("write handshake: %w", err)
	}
	timer := time.NewTimer(cfg.Timeout)
	defer timer.Stop()
	for i, cl := range calls {
		var rp reply
		select {
		case rp = <-chans[i]:
		case <-c.done:
			return fmt.Errorf("connection closed during handshake: %w", c.err)
		case <-timer.C:
			return errors.New("handshake timed out")
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := c.handshakeReply(cl.id, rp); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) handshakeReply(id int64, rp reply) error {
	switch id {
	case idConfigure:
		var res map[string]json.RawMessage
		if rp.code() != 0 || json.Unmarshal(rp.result, &res) != nil {
			return nil // a pool without version rolling: mine without it
		}
		if string(res["version-rolling"]) == "true" {
			var s string
			_ = json.Unmarshal(res["version-rolling.mask"], &s)
			v, err := strconv.ParseUint(s, 16, 32)
			if err != nil {
				return fmt.Errorf("configure: version-rolling mask %q: %w", s, err)
			}
			c.mask = uint32(v)
		}
	case idSubscribe:
		var res []json.RawMessage
		if rp.code() != 0 || json.Unmarshal(rp.result, &res) != nil || len(res) < 3 {
			return fmt.Errorf("subscribe refused: result %s error %s", rp.result, rp.err)
		}
		var en1 string
		if err := json.Unmarshal(res[1], &en1); err != nil {
			return fmt.Errorf("subscribe: extranonce1: %w", err)
		}
		b, err := hex.DecodeString(en1)
		if err != nil {
			return fmt.Errorf("subscribe: extranonce1 %q: %w", en1, err)
		}
		if err := json.Unmarshal(res[2], &c.en2Size); err != nil || c.en2Size < 1 || c.en2Size > 32 {
			return fmt.Errorf("subscribe: extranonce2 size %s", res[2])
		}
		c.en1 = b
	case idAuthorize:
		if rp.code() != 0 || string(rp.result) != "true" {
			return fmt.Errorf("authorize refused: result %s error %s", rp.result, rp.err)
		}
	case idSuggest:
		// Pools may ignore or refuse a suggestion; set_difficulty decides.
	}
	return nil
}

// readLine returns the next line; a line longer than the buffer is
// assembled in a fresh slice.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if err == nil || !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	long := append([]byte(nil), line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		if len(long) > 1<<20 {
			return nil, errors.New("line from pool over 1 MiB")
		}
		line, err = c.br.ReadSlice('\n')
		long = append(long, line...)
	}
	return long, err
}

var (
	trueTail = []byte(`,"result":true,"error":null}`)
	idHead   = []byte(`{"id":`)
)

func (c *conn) readLoop() {
	defer close(c.done)
	for {
		line, err := c.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("pool closed the connection")
			}
			c.err = err
			return
		}
		now := time.Now()
		// Fast path for the common reply {"id":N,"result":true,"error":null}.
		if rest, ok := bytes.CutPrefix(line, idHead); ok {
			if i := bytes.IndexByte(rest, ','); i > 0 {
				if id, err := strconv.ParseInt(string(rest[:i]), 10, 64); err == nil &&
					bytes.Equal(bytes.TrimRight(rest[i:], "\r\n"), trueTail) {
					c.onReply(id, reply{result: json.RawMessage("true")}, now)
					continue
				}
			}
		}
		// Fast path for notify on connections that do not mine: only the
		// prevhash is needed, and a full decode on 10k connections would
		// make the client, not the pool, the fan-out bottleneck.
		if (c.r.cfg.Idle || c.r.cfg.Raw) && c.job.Load() != nil {
			if prev, ok := notifyPrevHash(line); ok {
				c.r.jobs.Add(1)
				c.newPrev(prev, now)
				continue
			}
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			c.r.protocolErrors.Add(1)
			continue
		}
		if msg.Method == "" {
			id, err := strconv.ParseInt(string(msg.ID), 10, 64)
			if err != nil {
				c.r.protocolErrors.Add(1)
				continue
			}
			c.onReply(id, reply{result: msg.Result, err: msg.Error}, now)
			continue
		}
		c.onNotification(msg.Method, msg.Params, now)
	}
}

func (c *conn) onReply(id int64, rp reply, now time.Time) {
	if id < firstSubmitID {
		c.hsMu.Lock()
		ch := c.hsReplies[id]
		delete(c.hsReplies, id)
		c.hsMu.Unlock()
		if ch != nil {
			ch <- rp
		}
		return
	}
	if c.pipe != nil {
		c.r.latency.Observe(now.Sub(time.Unix(0, c.sentRing[id%int64(len(c.sentRing))].Load())))
		if rp.code() == 0 && string(rp.result) == "true" {
			c.r.accepted.Add(1)
		} else {
			c.r.rejected.Add(1)
			c.r.countRejection(rp.code())
		}
		select {
		case <-c.pipe:
		default:
			c.r.protocolErrors.Add(1) // a reply to nothing in flight
		}
		return
	}
	if id != c.sentID.Load() {
		c.r.protocolErrors.Add(1)
		return
	}
	c.r.latency.Observe(now.Sub(time.Unix(0, c.sentAt.Load())))
	ok := rp.code() == 0 && string(rp.result) == "true"
	if ok {
		c.r.accepted.Add(1)
	} else {
		c.r.rejected.Add(1)
		c.r.countRejection(rp.code())
	}
	select {
	case c.replied <- ok:
	default:
	}
}

func (c *conn) onNotification(method string, params json.RawMessage, now time.Time) {
	switch method {
	case "mining.notify":
		j, err := ParseNotify(params)
		if err != nil {
			c.r.protocolErrors.Add(1)
			return
		}
		c.r.jobs.Add(1)
		c.newPrev([]byte(j.PrevHex), now)
		c.job.Store(j)
		c.signalJob()
	case "mining.set_difficulty":
		var p []float64
		if json.Unmarshal(params, &p) == nil && len(p) >= 1 && p[0] > 0 {
			c.diff.Store(math.Float64bits(p[0]))
			c.signalJob()
		}
	case "mining.set_version_mask":
		// The mask is read by the mining goroutine only at subscribe time;
		// a changed mask would make version bits wrong, so count it.
		c.r.maskChanges.Add(1)
	}
}

// newPrev notes a notify's prevhash: the first job of a new block on this
// connection is a fan-out receipt. The first job after connecting is not,
// except on raw connections, which only ever see broadcasts.
func (c *conn) newPrev(prev []byte, now time.Time) {
	if string(prev) == c.prev {
		return
	}
	if c.prev != "" || c.r.cfg.Raw {
		c.r.fan.seen(string(prev), now)
	}
	c.prev = string(prev)
}

var notifyHead = []byte(`"method":"mining.notify","params":["`)

// notifyPrevHash extracts the prevhash (second param) of a notify line
// without decoding it; ok is false for any other shape.
func notifyPrevHash(line []byte) (prev []byte, ok bool) {
	i := bytes.Index(line, notifyHead)
	if i < 0 {
		return nil, false
	}
	rest := line[i+len(notifyHead):]
	// Skip the job id string (ids never contain quotes in practice; an
	// escaped one makes this fail over to the full decode).
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 || !bytes.HasPrefix(rest[j:], []byte(`","`)) {
		return nil, false
	}
	rest = rest[j+3:]
	if len(rest) < 65 || rest[64] != '"' {
		return nil, false
	}
	return rest[:64], true
}

func (c *conn) signalJob() {
	select {
	case c.jobSig <- struct{}{}:
	default:
	}
}

func (c *conn) difficulty() float64 { return math.Float64frombits(c.diff.Load()) }

// waitJob waits for the first job.
func (c *conn) waitJob(ctx context.Context) (*Job, error) {
	for {
		if j := c.job.Load(); j != nil {
			return j, nil
		}
		select {
		case <-c.jobSig:
		case <-c.done:
			return nil, fmt.Errorf("connection closed: %w", c.err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// nextShare returns a stocked share for the current job and difficulty, or
// mines one.
func (c *conn) nextShare(ctx context.Context) (*Share, error) {
	for {
		j, err := c.waitJob(ctx)
		if err != nil {
			return nil, err
		}
		d := c.difficulty()
		for len(c.stock) > 0 {
			s := c.stock[0]
			c.stock = c.stock[1:]
			if s.Job == j && s.Difficulty == d {
				return s, nil
			}
		}
		c.worker.SetJob(j, d)
		for c.job.Load() == j && c.difficulty() == d {
			s, err := c.worker.Mine(4096)
			if err != nil {
				return nil, err
			}
			if s != nil {
				return s, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
		}
	}
}

// preMine stocks n shares for the current job.
func (c *conn) preMine(ctx context.Context, n int) error {
	j, err := c.waitJob(ctx)
	if err != nil {
		return err
	}
	c.worker.SetJob(j, c.difficulty())
	for len(c.stock) < n {
		s, err := c.worker.Mine(4096)
		if err != nil {
			return err
		}
		if s != nil {
			c.stock = append(c.stock, s)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// submitPipelined sends one share once fewer than Config.Pipeline are in
// flight; the reader counts the verdicts.
func (c *conn) submitPipelined(ctx context.Context, s *Share) error {
	select {
	case c.pipe <- struct{}{}:
	case <-c.done:
		return fmt.Errorf("connection closed: %w", c.err)
	case <-ctx.Done():
		return ctx.Err()
	}
	id := c.nextID
	c.nextID++
	c.wbuf = s.AppendSubmit(c.wbuf[:0], id, c.user)
	c.sentRing[id%int64(len(c.sentRing))].Store(time.Now().UnixNano())
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.r.cfg.Timeout))
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return fmt.Errorf("write submit: %w", err)
	}
	c.r.submitted.Add(1)
	return nil
}

// submit sends one share and waits for the verdict.
func (c *conn) submit(ctx context.Context, s *Share) error {
	if c.pipe != nil {
		return c.submitPipelined(ctx, s)
	}
	id := c.nextID
	c.nextID++
	c.wbuf = s.AppendSubmit(c.wbuf[:0], id, c.user)
	select {
	case <-c.replied: // drop a late verdict of an earlier, timed-out submit
	default:
	}
	c.sentID.Store(id)
	c.sentAt.Store(time.Now().UnixNano())
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.r.cfg.Timeout))
	if _, err := c.nc.Write(c.wbuf); err != nil {
		return fmt.Errorf("write submit: %w", err)
	}
	c.r.submitted.Add(1)
	timer := time.NewTimer(c.r.cfg.Timeout)
	defer timer.Stop()
	select {
	case <-c.replied:
		return nil
	case <-timer.C:
		c.r.timeouts.Add(1)
		return errors.New("submit timed out")
	case <-c.done:
		return fmt.Errorf("connection closed: %w", c.err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mine submits shares until ctx ends, the connection fails (an error) or
// SharesPerConn submits were made (nil). With an Interval, submits are
// paced to one per interval at a random phase per connection, so that
// thousands of connections do not submit in lockstep.
func (c *conn) mine(ctx context.Context) error {
	iv := c.r.cfg.Interval
	next := time.Now()
	if iv > 0 {
		next = next.Add(time.Duration(rand.Int64N(int64(iv))))
	}
	for n := 0; ; n++ {
		if lim := c.r.cfg.SharesPerConn; lim > 0 && n >= lim {
			return nil
		}
		s, err := c.nextShare(ctx)
		if err != nil {
			return err
		}
		if iv > 0 {
			if err := c.sleepUntil(ctx, next); err != nil {
				return err
			}
			next = next.Add(iv)
			if now := time.Now(); next.Before(now) {
				next = now // fell behind: no catch-up burst
			}
		}
		if err := c.submit(ctx, s); err != nil {
			return err
		}
	}
}

func (c *conn) sleepUntil(ctx context.Context, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return fmt.Errorf("connection closed: %w", c.err)
	}
}

func (c *conn) close() {
	c.nc.Close()
	<-c.done
}
