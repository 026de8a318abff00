package miner

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Miner.
type Config struct {
	// Address is the pool's host:port.
	Address string
	// TLS, when set, dials with TLS.
	TLS *tls.Config
	// Username and Password are sent in mining.authorize.
	Username string
	Password string
	// UserAgent is the first subscribe param (default "lode-testminer/1.0").
	UserAgent string
	// SessionID, when set, is sent as the second subscribe param (resume).
	SessionID string
	// VersionRolling sends mining.configure with version-rolling first and
	// rolls the version bits the pool grants.
	VersionRolling bool
	// VersionMask is the mask requested (default ffffffff).
	VersionMask uint32
	// SuggestDifficulty, when > 0, is sent as mining.suggest_difficulty after
	// authorize.
	SuggestDifficulty float64
	// Pipeline sends configure, subscribe, authorize (and the suggestion)
	// without waiting for replies, like ESP-Miner.
	Pipeline bool
	// Timeout bounds each request/response round trip (default 10 s).
	Timeout time.Duration
	// OnReply, when set, is called on the read goroutine with the id of
	// each reply in the order replies arrive (tests of reply order).
	OnReply func(id int64)
}

// Job is a mining.notify as received.
type Job struct {
	ID           string
	PrevHash     [32]byte // header order
	Coinb1       []byte
	Coinb2       []byte
	MerkleBranch [][32]byte
	Version      uint32
	NBits        uint32
	NTime        uint32
	Clean        bool
	Received     time.Time
}

// Stats are a miner's counters.
type Stats struct {
	Accepted  int64
	Rejected  int64
	ByCode    map[int]int64 // rejections by Stratum error code
	Latencies []time.Duration
	Jobs      int64 // notifies received
	Clean     int64 // notifies with clean_jobs=true
}

// Reply is a response to one request.
type Reply struct {
	ID     json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
}

// Code returns the error code of an error reply (0 for success).
func (r *Reply) Code() int {
	if len(r.Error) == 0 || string(r.Error) == "null" {
		return 0
	}
	var arr []json.RawMessage
	if json.Unmarshal(r.Error, &arr) == nil && len(arr) > 0 {
		if c, err := strconv.Atoi(string(arr[0])); err == nil {
			return c
		}
	}
	return -1
}

// OK reports a successful true result.
func (r *Reply) OK() bool { return r.Code() == 0 && string(r.Result) == "true" }

// Miner is one Stratum connection.
type Miner struct {
	cfg  Config
	conn net.Conn

	wmu sync.Mutex // serializes writes
	mu  sync.Mutex
	// guarded by mu
	pending     map[int64]chan Reply
	job         *Job
	diff        float64
	extranonce1 []byte
	en2Size     int
	mask        uint32
	stats       Stats
	readErr     error

	nextID  atomic.Int64
	jobGen  atomic.Uint64
	events  chan Job
	other   chan Notification
	done    chan struct{}
	closeMu sync.Once
}

// Notification is a server message other than notify and set_difficulty.
type Notification struct {
	Method string
	Params json.RawMessage
}

// Dial connects and performs the handshake: configure (when version
// rolling), subscribe, authorize and an optional difficulty suggestion.
func Dial(ctx context.Context, cfg Config) (*Miner, error) {
	if cfg.UserAgent == "" {
		cfg.UserAgent = "lode-testminer/1.0"
	}
	if cfg.VersionMask == 0 {
		cfg.VersionMask = 0xffffffff
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("dial pool %s: %w", cfg.Address, err)
	}
	if cfg.TLS != nil {
		tc := tls.Client(conn, cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", cfg.Address, err)
		}
		conn = tc
	}
	m := &Miner{
		cfg:     cfg,
		conn:    conn,
		pending: make(map[int64]chan Reply),
		diff:    1,
		events:  make(chan Job, 64),
		other:   make(chan Notification, 64),
		done:    make(chan struct{}),
	}
	go m.readLoop()
	if err := m.handshake(ctx); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Miner) handshake(ctx context.Context) error {
	type call struct {
		method string
		params any
	}
	var calls []call
	if m.cfg.VersionRolling {
		calls = append(calls, call{"mining.configure", []any{[]string{"version-rolling"},
			map[string]any{"version-rolling.mask": fmt.Sprintf("%08x", m.cfg.VersionMask), "version-rolling.min-bit-count": 2}}})
	}
	sub := []any{m.cfg.UserAgent}
	if m.cfg.SessionID != "" {
		sub = append(sub, m.cfg.SessionID)
	}
	calls = append(calls, call{"mining.subscribe", sub}, call{"mining.authorize", []any{m.cfg.Username, m.cfg.Password}})
	if m.cfg.SuggestDifficulty > 0 {
		calls = append(calls, call{"mining.suggest_difficulty", []any{m.cfg.SuggestDifficulty}})
	}
	handle := func(c call, r Reply) error {
		if r.Code() != 0 {
			return fmt.Errorf("%s refused: %s", c.method, r.Error)
		}
		switch c.method {
		case "mining.configure":
			var res map[string]json.RawMessage
			if err := json.Unmarshal(r.Result, &res); err != nil {
				return fmt.Errorf("configure result: %w", err)
			}
			if string(res["version-rolling"]) == "true" {
				var s string
				_ = json.Unmarshal(res["version-rolling.mask"], &s)
				v, err := strconv.ParseUint(s, 16, 32)
				if err != nil {
					return fmt.Errorf("configure mask %q: %w", s, err)
				}
				m.mu.Lock()
				m.mask = uint32(v)
				m.mu.Unlock()
			}
		case "mining.subscribe":
			var res []json.RawMessage
			if err := json.Unmarshal(r.Result, &res); err != nil || len(res) < 3 {
				return fmt.Errorf("subscribe result %s", r.Result)
			}
			var en1 string
			var size int
			if err := json.Unmarshal(res[1], &en1); err != nil {
				return fmt.Errorf("extranonce1: %w", err)
			}
			if err := json.Unmarshal(res[2], &size); err != nil || size < 1 || size > 100 {
				return fmt.Errorf("extranonce2 size %s", res[2])
			}
			b, err := hex.DecodeString(en1)
			if err != nil {
				return fmt.Errorf("extranonce1 %q: %w", en1, err)
			}
			m.mu.Lock()
			m.extranonce1, m.en2Size = b, size
			m.mu.Unlock()
		case "mining.authorize":
			if string(r.Result) != "true" {
				return fmt.Errorf("authorize refused: %s", r.Result)
			}
		}
		return nil
	}
	if m.cfg.Pipeline {
		chans := make([]chan Reply, len(calls))
		for i, c := range calls {
			ch, err := m.send(c.method, c.params)
			if err != nil {
				return err
			}
			chans[i] = ch
		}
		for i, c := range calls {
			r, err := m.wait(ctx, chans[i])
			if err != nil {
				return fmt.Errorf("%s: %w", c.method, err)
			}
			if err := handle(c, r); err != nil {
				return err
			}
		}
		return nil
	}
	for _, c := range calls {
		r, err := m.Call(ctx, c.method, c.params)
		if err != nil {
			return fmt.Errorf("%s: %w", c.method, err)
		}
		if err := handle(c, r); err != nil {
			return err
		}
	}
	return nil
}

// Call sends a request and waits for its reply.
func (m *Miner) Call(ctx context.Context, method string, params any) (Reply, error) {
	ch, err := m.send(method, params)
	if err != nil {
		return Reply{}, err
	}
	return m.wait(ctx, ch)
}

// Send sends a request without waiting: its reply arrives on the channel
// (pipelining, and tests of reply order).
func (m *Miner) Send(method string, params any) (<-chan Reply, error) { return m.send(method, params) }

func (m *Miner) send(method string, params any) (chan Reply, error) {
	id := m.nextID.Add(1)
	line, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	ch := make(chan Reply, 1)
	m.mu.Lock()
	m.pending[id] = ch
	m.mu.Unlock()
	if err := m.WriteRaw(append(line, '\n')); err != nil {
		return nil, err
	}
	return ch, nil
}

func (m *Miner) wait(ctx context.Context, ch chan Reply) (Reply, error) {
	t := time.NewTimer(m.cfg.Timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, nil
	case <-m.done:
		// A reply may have arrived just before the connection ended.
		select {
		case r := <-ch:
			return r, nil
		default:
		}
		return Reply{}, fmt.Errorf("connection closed: %w", m.Err())
	case <-t.C:
		return Reply{}, errors.New("timed out waiting for reply")
	case <-ctx.Done():
		return Reply{}, ctx.Err()
	}
}

// WriteRaw writes bytes as they are (for tests of malformed input).
func (m *Miner) WriteRaw(b []byte) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	_ = m.conn.SetWriteDeadline(time.Now().Add(m.cfg.Timeout))
	if _, err := m.conn.Write(b); err != nil {
		return fmt.Errorf("write to pool: %w", err)
	}
	return nil
}

// readLoop reads server lines until the connection ends; it must be run as
// a goroutine.
func (m *Miner) readLoop() {
	defer close(m.done)
	r := bufio.NewReaderSize(m.conn, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			m.mu.Lock()
			m.readErr = err
			m.mu.Unlock()
			return
		}
		var msg struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			Result json.RawMessage `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			m.mu.Lock()
			m.readErr = fmt.Errorf("bad line from pool %q: %w", line, err)
			m.mu.Unlock()
			return
		}
		if msg.Method == "" {
			id, err := strconv.ParseInt(string(msg.ID), 10, 64)
			if err != nil {
				continue
			}
			if m.cfg.OnReply != nil {
				m.cfg.OnReply(id)
			}
			m.mu.Lock()
			ch := m.pending[id]
			delete(m.pending, id)
			m.mu.Unlock()
			if ch != nil {
				ch <- Reply{ID: msg.ID, Result: msg.Result, Error: msg.Error}
			}
			continue
		}
		m.notification(msg.Method, msg.Params)
	}
}

func (m *Miner) notification(method string, params json.RawMessage) {
	switch method {
	case "mining.set_difficulty":
		var p []float64
		if json.Unmarshal(params, &p) == nil && len(p) == 1 && p[0] > 0 {
			m.mu.Lock()
			m.diff = p[0]
			m.mu.Unlock()
		}
	case "mining.notify":
		j, err := parseNotify(params)
		if err != nil {
			return
		}
		m.mu.Lock()
		m.job = j
		m.stats.Jobs++
		if j.Clean {
			m.stats.Clean++
		}
		m.mu.Unlock()
		m.jobGen.Add(1)
		select {
		case m.events <- *j:
		default:
		}
	case "mining.set_version_mask":
		var p []string
		if json.Unmarshal(params, &p) == nil && len(p) == 1 {
			if v, err := strconv.ParseUint(p[0], 16, 32); err == nil {
				m.mu.Lock()
				m.mask = uint32(v)
				m.mu.Unlock()
			}
		}
		fallthrough
	default:
		select {
		case m.other <- Notification{Method: method, Params: params}:
		default:
		}
	}
}

func parseNotify(params json.RawMessage) (*Job, error) {
	var p []json.RawMessage
	if err := json.Unmarshal(params, &p); err != nil || len(p) < 9 {
		return nil, errors.New("notify: want 9 params")
	}
	var s [8]string
	var branch []string
	for i, idx := range []int{0, 1, 2, 3, 5, 6, 7} {
		if err := json.Unmarshal(p[idx], &s[i]); err != nil {
			return nil, fmt.Errorf("notify param %d: %w", idx, err)
		}
	}
	if err := json.Unmarshal(p[4], &branch); err != nil {
		return nil, fmt.Errorf("notify branch: %w", err)
	}
	j := &Job{ID: s[0], Received: time.Now()}
	if err := json.Unmarshal(p[8], &j.Clean); err != nil {
		return nil, fmt.Errorf("notify clean: %w", err)
	}
	prev, err := hex.DecodeString(s[1])
	if err != nil || len(prev) != 32 {
		return nil, errors.New("notify prevhash")
	}
	// Stratum prevhash: each 4-byte word byte-reversed relative to header order.
	for i := 0; i < 32; i += 4 {
		j.PrevHash[i], j.PrevHash[i+1], j.PrevHash[i+2], j.PrevHash[i+3] = prev[i+3], prev[i+2], prev[i+1], prev[i]
	}
	if j.Coinb1, err = hex.DecodeString(s[2]); err != nil {
		return nil, err
	}
	if j.Coinb2, err = hex.DecodeString(s[3]); err != nil {
		return nil, err
	}
	for _, h := range branch {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != 32 {
			return nil, errors.New("notify branch hash")
		}
		j.MerkleBranch = append(j.MerkleBranch, [32]byte(b))
	}
	for i, dst := range []*uint32{&j.Version, &j.NBits, &j.NTime} {
		v, err := strconv.ParseUint(s[4+i], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("notify field %d: %w", 5+i, err)
		}
		*dst = uint32(v)
	}
	return j, nil
}

// Jobs delivers every notify received (buffered; drops when full).
func (m *Miner) Jobs() <-chan Job { return m.events }

// Notifications delivers other server messages (client.reconnect,
// set_extranonce, set_version_mask).
func (m *Miner) Notifications() <-chan Notification { return m.other }

// Done is closed when the connection has ended.
func (m *Miner) Done() <-chan struct{} { return m.done }

// Err returns why the connection ended (nil while open).
func (m *Miner) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.readErr
}

// Extranonce1 returns the extranonce1 the pool assigned.
func (m *Miner) Extranonce1() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.extranonce1...)
}

// Extranonce2Size returns the extranonce2 size the pool assigned.
func (m *Miner) Extranonce2Size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.en2Size
}

// VersionMask returns the negotiated version-rolling mask (0 when none).
func (m *Miner) VersionMask() uint32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mask
}

// Difficulty returns the last set_difficulty.
func (m *Miner) Difficulty() float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.diff
}

// CurrentJob returns the latest job (nil before the first notify).
func (m *Miner) CurrentJob() *Job {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.job
}

// Stats returns a copy of the counters.
func (m *Miner) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.ByCode = make(map[int]int64, len(m.stats.ByCode))
	for k, v := range m.stats.ByCode {
		s.ByCode[k] = v
	}
	s.Latencies = append([]time.Duration(nil), m.stats.Latencies...)
	return s
}

// Close closes the connection.
func (m *Miner) Close() error {
	var err error
	m.closeMu.Do(func() { err = m.conn.Close() })
	return err
}

// Share is a solved share ready to submit.
type Share struct {
	JobID       string
	Extranonce2 []byte
	NTime       uint32
	Nonce       uint32
	VersionBits uint32 // rolled bits (only with HasVersion)
	HasVersion  bool
	Hash        [32]byte // internal order
}

// Params returns the mining.submit params for worker.
func (s *Share) Params(worker string) []string {
	p := []string{worker, s.JobID, hex.EncodeToString(s.Extranonce2), fmt.Sprintf("%08x", s.NTime), fmt.Sprintf("%08x", s.Nonce)}
	if s.HasVersion {
		p = append(p, fmt.Sprintf("%08x", s.VersionBits))
	}
	return p
}

// Submit sends a share and waits for the verdict, recording latency and
// counts.
func (m *Miner) Submit(ctx context.Context, s *Share) (Reply, error) {
	start := time.Now()
	r, err := m.Call(ctx, "mining.submit", s.Params(m.cfg.Username))
	if err != nil {
		return r, err
	}
	lat := time.Since(start)
	m.mu.Lock()
	m.stats.Latencies = append(m.stats.Latencies, lat)
	if c := r.Code(); c == 0 && string(r.Result) == "true" {
		m.stats.Accepted++
	} else {
		m.stats.Rejected++
		if m.stats.ByCode == nil {
			m.stats.ByCode = make(map[int]int64)
		}
		m.stats.ByCode[c]++
	}
	m.mu.Unlock()
	return r, nil
}

// DifficultyTarget returns the share target for difficulty d as a 256-bit
// number (diff1 / d).
func DifficultyTarget(d float64) *big.Int {
	diff1 := new(big.Int).Lsh(big.NewInt(0xffff), 208)
	if d <= 0 || math.IsInf(d, 0) || math.IsNaN(d) {
		return diff1
	}
	t, _ := new(big.Float).Quo(new(big.Float).SetInt(diff1), big.NewFloat(d)).Int(nil)
	return t
}

// Header builds the 80-byte header for a job and choices (stratum-v1.md §6).
func Header(j *Job, extranonce1, extranonce2 []byte, version, ntime, nonce uint32) [80]byte {
	cb := make([]byte, 0, len(j.Coinb1)+len(extranonce1)+len(extranonce2)+len(j.Coinb2))
	cb = append(append(append(append(cb, j.Coinb1...), extranonce1...), extranonce2...), j.Coinb2...)
	root := sha256d(cb)
	for _, h := range j.MerkleBranch {
		var buf [64]byte
		copy(buf[:32], root[:])
		copy(buf[32:], h[:])
		root = sha256d(buf[:])
	}
	var hdr [80]byte
	binary.LittleEndian.PutUint32(hdr[0:], version)
	copy(hdr[4:36], j.PrevHash[:])
	copy(hdr[36:68], root[:])
	binary.LittleEndian.PutUint32(hdr[68:], ntime)
	binary.LittleEndian.PutUint32(hdr[72:], j.NBits)
	binary.LittleEndian.PutUint32(hdr[76:], nonce)
	return hdr
}

func sha256d(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

// meets reports whether an internal-order hash is ≤ a big-endian target.
func meets(hash *[32]byte, target *[32]byte) bool {
	for i := 0; i < 32; i++ {
		h := hash[31-i]
		if h != target[i] {
			return h < target[i]
		}
	}
	return true
}

// Mine searches for one share on the current job at the current difficulty.
// It gives up (nil, nil) when a new job arrives, and returns ctx's error
// when ctx ends. en2 is the extranonce2 counter to use.
func (m *Miner) Mine(ctx context.Context, en2 uint64) (*Share, error) {
	m.mu.Lock()
	j, d, en1, size, mask := m.job, m.diff, m.extranonce1, m.en2Size, m.mask
	m.mu.Unlock()
	gen := m.jobGen.Load()
	if j == nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-m.done:
			return nil, fmt.Errorf("connection closed: %w", m.Err())
		case <-time.After(20 * time.Millisecond):
			return nil, nil
		}
	}
	var target [32]byte
	DifficultyTarget(d).FillBytes(target[:])
	e2 := make([]byte, size)
	for i := 0; i < size && i < 8; i++ {
		e2[size-1-i] = byte(en2 >> (8 * i))
	}
	// Roll the lowest granted version bit pattern when version rolling is on.
	version, bits := j.Version, uint32(0)
	rolled := false
	if m.cfg.VersionRolling && mask != 0 {
		bits = SpreadBits(uint32(en2%7)+1, mask)
		version = j.Version&^mask | bits
		rolled = true
	}
	hdr := Header(j, en1, e2, version, j.NTime, 0)
	for nonce := uint32(0); ; nonce++ {
		if nonce&0x3fff == 0 {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if m.jobGen.Load() != gen {
				return nil, nil
			}
			select {
			case <-m.done:
				return nil, fmt.Errorf("connection closed: %w", m.Err())
			default:
			}
		}
		binary.LittleEndian.PutUint32(hdr[76:], nonce)
		h := sha256d(hdr[:])
		if meets(&h, &target) {
			return &Share{JobID: j.ID, Extranonce2: e2, NTime: j.NTime, Nonce: nonce, VersionBits: bits, HasVersion: rolled, Hash: h}, nil
		}
		if nonce == math.MaxUint32 {
			return nil, nil
		}
	}
}

// SpreadBits places the low bits of v into the set bits of mask: version
// bits a simulated miner rolls within its negotiated mask.
func SpreadBits(v, mask uint32) uint32 {
	var out uint32
	for bit := uint32(1); bit != 0 && v != 0; bit <<= 1 {
		if mask&bit != 0 {
			if v&1 != 0 {
				out |= bit
			}
			v >>= 1
		}
	}
	return out
}

// Run mines and submits until ctx ends or maxAccepted shares are accepted
// (0 = no limit). It returns the stats; the error is nil when it stopped
// because of the limit or ctx.
func (m *Miner) Run(ctx context.Context, maxAccepted int64) (Stats, error) {
	var en2 uint64
	for {
		if maxAccepted > 0 && m.Stats().Accepted >= maxAccepted {
			return m.Stats(), nil
		}
		en2++
		sh, err := m.Mine(ctx, en2)
		if err != nil {
			if ctx.Err() != nil {
				return m.Stats(), nil
			}
			return m.Stats(), err
		}
		if sh == nil {
			continue
		}
		if _, err := m.Submit(ctx, sh); err != nil {
			if ctx.Err() != nil {
				return m.Stats(), nil
			}
			return m.Stats(), err
		}
	}
}
