package stratum

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/stratum/message"
)

// mined dials a miner and mines one share without submitting it.
func mined(t *testing.T, ctx context.Context, h *harness, cfg miner.Config) (*miner.Miner, *miner.Share) {
	t.Helper()
	cfg.Address = h.addr
	if cfg.Username == "" {
		cfg.Username = testAddress(t, 20)
	}
	m, err := miner.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	for en2 := uint64(1); ; en2++ {
		sh, err := m.Mine(ctx, en2)
		if err != nil {
			t.Fatal(err)
		}
		if sh != nil {
			return m, sh
		}
	}
}

func submitParams(t *testing.T, ctx context.Context, m *miner.Miner, params []string) miner.Reply {
	t.Helper()
	r, err := m.Call(ctx, message.MethodSubmit, params)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestShareRejections(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{VersionRolling: true, VersionMask: 0x1fffe000})
	user := testAddress(t, 20)
	job := m.CurrentJob()
	good := sh.Params(user)
	with := func(i int, v string) []string {
		p := append([]string(nil), good...)
		p[i] = v
		return p
	}
	// A nonce whose hash misses the share target.
	lowNonce := sh.Nonce + 1
	for {
		hdr := miner.Header(job, m.Extranonce1(), sh.Extranonce2, job.Version&^0x1fffe000|sh.VersionBits, sh.NTime, lowNonce)
		hash := sha256d(hdr[:])
		if !meetsDifficulty(hash, testDiff) {
			break
		}
		lowNonce++
	}
	tests := []struct {
		name   string
		params []string
		code   int
	}{
		{"accepted", good, 0},
		{"duplicate", good, message.CodeDuplicate},
		{"unknown job", with(1, "ffffffff"), message.CodeJobNotFound},
		{"low difficulty", with(4, fmt.Sprintf("%08x", lowNonce)), message.CodeLowDifficulty},
		{"extranonce2 too short", with(2, "0001"), message.CodeOther},
		{"extranonce2 not hex", with(2, "zz00000000000000"), message.CodeOther},
		{"ntime far ahead", with(3, fmt.Sprintf("%08x", job.NTime+100000)), message.CodeOther},
		{"ntime before mintime", with(3, fmt.Sprintf("%08x", job.NTime-1000000)), message.CodeOther},
		{"version bits outside mask", with(5, "e0000000"), message.CodeOther},
		{"version bits outside negotiated", with(5, "00000001"), message.CodeOther},
		{"four params", good[:4], message.CodeOther},
		{"another worker", with(0, testAddress(t, 21)), message.CodeUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, before := h.srv.Stats().Submit.Snapshot()
			r := submitParams(t, ctx, m, tc.params)
			if r.Code() != tc.code {
				t.Fatalf("code %d (%s), want %d", r.Code(), r.Error, tc.code)
			}
			// Accepted or rejected, every answered submit is timed.
			if _, _, _, after := h.srv.Stats().Submit.Snapshot(); after != before+1 {
				t.Fatalf("submit latency count %d → %d, want +1", before, after)
			}
		})
	}
	if got := h.srv.Stats().RejectedByCode(message.CodeOther); got != 7 {
		t.Fatalf("rejected 20: %d", got)
	}
	h.obs.mu.Lock()
	n := len(h.obs.all)
	h.obs.mu.Unlock()
	if n != len(tests)-1 {
		t.Fatalf("observer saw %d rejections", n)
	}
}

func sha256d(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

// meetsDifficulty reports whether an internal-order hash meets difficulty d.
func meetsDifficulty(hash [32]byte, d float64) bool {
	var be [32]byte
	for i := range hash {
		be[i] = hash[31-i]
	}
	return new(big.Int).SetBytes(be[:]).Cmp(miner.DifficultyTarget(d)) <= 0
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

func TestVersionBitsWithoutConfigure(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A miner that never configured but rolls inside the pool mask (decision
	// documented in doc.go): accepted. Then the whole-version quirk.
	m, sh := mined(t, ctx, h, miner.Config{})
	job := m.CurrentJob()
	user := testAddress(t, 20)
	bits := uint32(0)
	var hit *miner.Share
	for en2 := uint64(100); hit == nil; en2++ {
		e2 := make([]byte, m.Extranonce2Size())
		binary.BigEndian.PutUint64(e2, en2)
		bits = 0x00006000
		for nonce := uint32(0); nonce < 1<<24; nonce++ {
			hdr := miner.Header(job, m.Extranonce1(), e2, job.Version|bits, job.NTime, nonce)
			if meetsDifficulty(sha256d(hdr[:]), testDiff) {
				hit = &miner.Share{JobID: job.ID, Extranonce2: e2, NTime: job.NTime, Nonce: nonce, VersionBits: bits, HasVersion: true}
				break
			}
		}
	}
	if r := submitParams(t, ctx, m, hit.Params(user)); !r.OK() {
		t.Fatalf("rolled without configure: %s", r.Error)
	}
	// The same share again, sent as the full version: it is the same header,
	// so a duplicate (22), which proves the full version was understood.
	p := hit.Params(user)
	p[5] = fmt.Sprintf("%08x", job.Version|bits)
	if r := submitParams(t, ctx, m, p); r.Code() != message.CodeDuplicate {
		t.Fatalf("full version: code %d %s, want 22", r.Code(), r.Error)
	}
	if r := submitParams(t, ctx, m, sh.Params(user)); !r.OK() {
		t.Fatalf("plain share: %s", r.Error)
	}
}

func TestStaleShareAfterNewBlock(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{})
	old := m.CurrentJob()
	// A refresh for the same block keeps the old job valid.
	h.srv.Publish(h.jobs.next(false))
	waitFor(t, "refresh job", func() bool { return m.CurrentJob().ID != old.ID })
	if r, _ := m.Submit(ctx, sh); !r.OK() {
		t.Fatalf("share for an older job of the same block: %s", r.Error)
	}
	clean := h.jobs.next(true)
	h.srv.Publish(clean)
	waitFor(t, "clean job", func() bool { j := m.CurrentJob(); return j.ID == clean.ID && j.Clean })
	// A share for the previous block is stale.
	if r, _ := m.Submit(ctx, &miner.Share{JobID: old.ID, Extranonce2: sh.Extranonce2, NTime: sh.NTime, Nonce: sh.Nonce + 1}); r.Code() != message.CodeJobNotFound {
		t.Fatalf("stale share: code %d %s", r.Code(), r.Error)
	}
	st := h.srv.Stats()
	var stale uint64
	for i := range st.StaleByAge {
		stale += st.StaleByAge[i].Load()
	}
	if stale != 1 {
		t.Fatalf("stale by age total %d", stale)
	}
	waitFor(t, "tip-to-notify observations", func() bool {
		_, _, _, n := st.TipToNotify.Snapshot()
		return n >= 1
	})
}

func TestSubmitBeforeHandshake(t *testing.T) {
	h := startServer(t, nil)
	params := `["` + testAddress(t, 40) + `","1","0000000000000000","504e86ed","b2957c02"]`
	c := dial(t, h.addr)
	if r := c.call("1", message.MethodSubmit, params); r.code() != message.CodeNotSubscribed {
		t.Fatalf("before subscribe: %s", r.Error)
	}
	c.call("2", message.MethodSubscribe, `[]`)
	if r := c.call("3", message.MethodSubmit, params); r.code() != message.CodeUnauthorized {
		t.Fatalf("before authorize: %s", r.Error)
	}
	// An invalid address gets 24 and the miner may retry.
	if r := c.call("4", message.MethodAuthorize, `["nope","x"]`); r.code() != message.CodeUnauthorized {
		t.Fatalf("bad address: %s", r.Error)
	}
	if r := c.call("5", message.MethodAuthorize, `["`+testAddress(t, 40)+`","x"]`); string(r.Result) != "true" {
		t.Fatalf("retry: %s", r.Error)
	}
	if r := c.call("6", message.MethodSubmit, params); r.code() != message.CodeJobNotFound {
		t.Fatalf("after authorize, unknown job: %s", r.Error)
	}
}

func TestMalformedJSONThenClose(t *testing.T) {
	h := startServer(t, nil)
	c := dial(t, h.addr)
	c.write("{bad json\n")
	if r := c.reply("null"); r.code() != message.CodeOther {
		t.Fatalf("malformed: %s", r.Error)
	}
	// A response to a server request is ignored, not a violation.
	c.write(`{"id":77,"result":"cgminer/4.12","error":null}` + "\n")
	c.write(`{"id":5,"params":[]}` + "\n")
	if r := c.reply("5"); r.code() != message.CodeOther {
		t.Fatalf("no method: %s", r.Error)
	}
	// Still usable.
	if r := c.call("6", message.MethodSubscribe, `[]`); r.code() != 0 {
		t.Fatalf("subscribe after bad input: %s", r.Error)
	}
	c.write("[1,2,3]\n")
	c.reply("null")
	c.expectClosed()
	waitFor(t, "protocol violation counted", func() bool { return h.srv.Stats().ClosedBy(CloseProtocolViolation) == 1 })
}

func TestOversizeLine(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxLineLength = 1024 })
	c := dial(t, h.addr)
	c.write(`{"id":1,"method":"mining.subscribe","params":["` + strings.Repeat("a", 900) + `"]}` + "\n")
	c.reply("1")
	c.write(strings.Repeat("x", 3000)) // no newline: closed once over the limit
	c.expectClosed()
	waitFor(t, "line too long counted", func() bool { return h.srv.Stats().ClosedBy(CloseLineTooLong) == 1 })
}

func TestSlowReaderIsClosed(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxPending = 8 << 10; c.WriteBuffer = 4096 })
	// A small receive buffer set before connect keeps the window small, so
	// the kernel does not absorb megabytes for the stalled reader.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	raw, err := d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := &client{t: t, conn: raw}
	c.r = newReader(raw)
	c.handshake(testAddress(t, 50))
	// Another miner keeps reading (its read loop drains every line); it
	// must not be affected.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other, err := miner.Dial(ctx, miner.Config{Address: h.addr, Username: testAddress(t, 51)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// The slow one stops reading; jobs keep coming.
	for i := 0; i < 20000 && h.srv.Stats().ClosedBy(CloseSlowConsumer) == 0; i++ {
		h.srv.Publish(h.jobs.next(false))
		// Jobs come at a pace a reading miner keeps up with.
		time.Sleep(time.Millisecond)
	}
	waitFor(t, "slow consumer closed", func() bool { return h.srv.Stats().ClosedBy(CloseSlowConsumer) == 1 })
	if r, err := other.Call(ctx, message.MethodSubscribe, []any{}); err != nil || r.Code() != 0 {
		t.Fatalf("other miner: %v %s", err, r.Error)
	}
	if h.srv.Stats().ClosedBy(CloseSlowConsumer) != 1 {
		t.Fatal("the reading miner was closed too")
	}
}

func TestAuthorizeAndIdleTimeouts(t *testing.T) {
	// A connection that never authorizes is closed at the authorize
	// timeout.
	h := startServer(t, func(c *Config) { c.AuthorizeTimeout = 200 * time.Millisecond })
	silent := dial(t, h.addr)
	silent.expectClosed()
	waitFor(t, "authorize timeout counted", func() bool { return h.srv.Stats().ClosedBy(CloseAuthorizeTimeout) == 1 })

	// An authorized miner that goes quiet is closed at the idle timeout.
	// The handshake is one write, so a loaded machine cannot stretch it
	// past the idle timeout between lines, and the authorize timeout is
	// far away: the close can only be the idle one.
	h = startServer(t, func(c *Config) { c.AuthorizeTimeout = time.Minute; c.IdleTimeout = 300 * time.Millisecond })
	idle := dial(t, h.addr)
	idle.write(`{"id":1,"method":"mining.subscribe","params":["test/1"]}` + "\n" +
		`{"id":2,"method":"mining.authorize","params":["` + testAddress(t, 60) + `","x"]}` + "\n")
	if r := idle.reply("2"); string(r.Result) != "true" {
		t.Fatalf("authorize: %s %s", r.Result, r.Error)
	}
	idle.expectClosed()
	waitFor(t, "idle counted", func() bool { return h.srv.Stats().ClosedBy(CloseIdle) == 1 })
	if n := h.srv.Stats().ClosedBy(CloseAuthorizeTimeout); n != 0 {
		t.Fatalf("%d authorize timeouts on the idle server", n)
	}
}

func TestConnectionLimits(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	a, b := dial(t, h.addr), dial(t, h.addr)
	a.call("1", message.MethodSubscribe, `[]`)
	b.call("1", message.MethodSubscribe, `[]`)
	third := dial(t, h.addr)
	third.expectClosed()
	if h.srv.Stats().ClosedBy(CloseTooManyPerIP) != 1 {
		t.Fatal("per-IP refusal not counted")
	}
	h2 := startServer(t, func(c *Config) { c.MaxConnections = 1 })
	first := dial(t, h2.addr)
	first.call("1", message.MethodSubscribe, `[]`)
	second := dial(t, h2.addr)
	second.expectClosed()
	if h2.srv.Stats().ClosedBy(CloseTooManyConnections) != 1 {
		t.Fatal("total limit refusal not counted")
	}
}

// TestBanOnRejectRatio: a connection sending mostly bad shares is closed.
// By default its IP is not banned (many honest miners can share one IP) and
// the worker name it used is never banned (anyone can claim a name: issue 10
// item 1); with Ban.IP the IP is refused for the ban's duration.
func TestBanOnRejectRatio(t *testing.T) {
	for _, banIP := range []bool{false, true} {
		t.Run(fmt.Sprintf("ip=%v", banIP), func(t *testing.T) {
			h := startServer(t, func(c *Config) {
				c.Ban = Ban{MinShares: 5, RejectRatio: 0.5, Window: time.Minute, Duration: time.Minute, IP: banIP}
			})
			// The victim's worker, connected from 127.0.0.2.
			user := testAddress(t, 70)
			victim := dialFrom(t, h.addr, "127.0.0.2")
			victim.handshake(user)
			// The attacker authorizes the same name from 127.0.0.1 and sends
			// bad shares (a job id this server never sent).
			c := dial(t, h.addr)
			c.handshake(user)
			for i := 0; i < 5; i++ {
				r := c.call(fmt.Sprint(10+i), message.MethodSubmit, `["`+user+`","nojob","0000000000000000","504e86ed","00000000"]`)
				if r.code() != message.CodeJobNotFound {
					t.Fatalf("submit %d: %s", i, r.Error)
				}
			}
			c.expectClosed()
			waitFor(t, "ban counted", func() bool { return h.srv.Stats().ClosedBy(CloseBanned) == 1 })
			again := dial(t, h.addr)
			if banIP {
				again.expectClosed()
				if h.srv.Stats().ClosedBy(CloseBanned) != 2 {
					t.Fatal("banned IP was admitted")
				}
			} else if r := again.call("1", message.MethodSubscribe, `[]`); r.Error != nil && string(r.Error) != "null" {
				t.Fatalf("IP refused without IP bans: %s", r.Error)
			}
			// The victim keeps working and can authorize its name again, on
			// its connection and on a new one.
			if r := victim.call("20", message.MethodAuthorize, `["`+user+`","x"]`); string(r.Result) != "true" {
				t.Fatalf("victim's worker refused on its connection: %s", r.Error)
			}
			fresh := dialFrom(t, h.addr, "127.0.0.2")
			fresh.call("1", message.MethodSubscribe, `[]`)
			if r := fresh.call("2", message.MethodAuthorize, `["`+user+`","x"]`); string(r.Result) != "true" {
				t.Fatalf("victim's worker banned: %s", r.Error)
			}
		})
	}
}

// TestStaleSharesNeverBan: shares for jobs this server sent that a new block
// made stale are not counted toward a ban, however many there are.
func TestStaleSharesNeverBan(t *testing.T) {
	h := startServer(t, func(c *Config) {
		c.Ban = Ban{MinShares: 5, RejectRatio: 0.5, Window: time.Minute, Duration: time.Minute, IP: true}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{})
	var stale []*miner.Share
	stale = append(stale, sh)
	for en2 := uint64(1000); len(stale) < 20; en2++ {
		s, err := m.Mine(ctx, en2)
		if err != nil {
			t.Fatal(err)
		}
		if s != nil {
			stale = append(stale, s)
		}
	}
	old := m.CurrentJob()
	clean := h.jobs.next(true)
	h.srv.Publish(clean)
	waitFor(t, "clean job", func() bool { j := m.CurrentJob(); return j.ID == clean.ID && j.Clean })
	for i, s := range stale {
		if s.JobID != old.ID {
			t.Fatalf("share %d for job %s, not the old job %s", i, s.JobID, old.ID)
		}
		r, err := m.Submit(ctx, s)
		if err != nil {
			t.Fatalf("stale share %d: %v", i, err)
		}
		if r.Code() != message.CodeJobNotFound {
			t.Fatalf("stale share %d answered %v %s", i, r.Code(), r.Error)
		}
	}
	if n := h.srv.Stats().ClosedBy(CloseBanned); n != 0 {
		t.Fatalf("%d connections banned for stale shares", n)
	}
	// Still connected: a fresh share is accepted.
	for en2 := uint64(5000); ; en2++ {
		s, err := m.Mine(ctx, en2)
		if err != nil {
			t.Fatal(err)
		}
		if s == nil {
			continue
		}
		if r, err := m.Submit(ctx, s); err != nil || !r.OK() {
			t.Fatalf("fresh share after the stale ones: %v %s", err, r.Error)
		}
		break
	}
}

// dialFrom connects from a loopback source address.
func dialFrom(t testing.TB, addr, src string) *client {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func TestRecorderFailureIsAnError(t *testing.T) {
	h := startServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, sh := mined(t, ctx, h, miner.Config{})
	h.rec.SetFailure(errors.New("ledger down"))
	r, err := m.Submit(ctx, sh)
	if err != nil || r.Code() != message.CodeOther {
		t.Fatalf("submit with failing recorder: %v %s", err, r.Error)
	}
	h.rec.SetFailure(nil)
	// The failed share stays in the duplicate filter (shares.Session marks
	// it when hashing); real miners do not resubmit rejected shares. The
	// next share is accepted.
	for en2 := uint64(1000); ; en2++ {
		next, err := m.Mine(ctx, en2)
		if err != nil {
			t.Fatal(err)
		}
		if next == nil {
			continue
		}
		if r, _ := m.Submit(ctx, next); !r.OK() {
			t.Fatalf("after recorder recovered: %s", r.Error)
		}
		break
	}
	if h.rec.Len() != 1 {
		t.Fatalf("recorded %d shares", h.rec.Len())
	}
}

// 1000 connections sending garbage (bounded: 32 at a time) do not stop a
// good miner from mining.
func TestGarbageConnectionsThenGoodMiner(t *testing.T) {
	h := startServer(t, func(c *Config) { c.MaxLineLength = 512; c.AuthorizeTimeout = time.Second })
	// Each kind is closed by the server: three malformed lines, a line over
	// the limit, or (the valid-but-useless submit) the authorize deadline.
	garbage := []string{
		"\x00\x01\x02\xff\n{\n}\n",
		"{{{{\n}}}}\n[[[\n",
		strings.Repeat("A", 2000),
		`{"id":1,"method":"mining.submit","params":[1,2,3]}` + "\n",
		"GET / HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			conn, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			defer conn.Close()
			_, _ = conn.Write([]byte(garbage[i%len(garbage)]))
			if i%2 == 0 {
				// Half wait for the server to hang up on them.
				_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				for {
					if _, err := conn.Read(buf); err != nil {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := miner.Dial(ctx, miner.Config{Address: h.addr, Username: testAddress(t, 80), Password: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	st, err := m.Run(ctx, 2)
	if err != nil || st.Accepted != 2 {
		t.Fatalf("good miner after garbage: %v %+v", err, st)
	}
	waitFor(t, "garbage sessions gone", func() bool { return h.srv.Stats().Connections.Load() == 1 })
}

func TestAdminBanAndReload(t *testing.T) {
	h := startServer(t, nil)
	var _ interface {
		Ban(context.Context, string, time.Duration) error
		Unban(context.Context, string) error
		Reload(Config) error
	} = h.srv
	ctx := context.Background()
	user := testAddress(t, 75)
	c := dial(t, h.addr)
	c.handshake(user)
	if err := h.srv.Ban(ctx, user, time.Minute); err != nil {
		t.Fatal(err)
	}
	c.expectClosed()
	again := dial(t, h.addr)
	again.call("1", message.MethodSubscribe, `[]`)
	if r := again.call("2", message.MethodAuthorize, `["`+user+`","x"]`); r.code() != message.CodeUnauthorized {
		t.Fatalf("banned worker: %s", r.Error)
	}
	if err := h.srv.Unban(ctx, user); err != nil {
		t.Fatal(err)
	}
	if r := again.call("3", message.MethodAuthorize, `["`+user+`","x"]`); string(r.Result) != "true" {
		t.Fatalf("after unban: %s", r.Error)
	}
	if err := h.srv.Ban(ctx, "127.0.0.1", 0); err != nil {
		t.Fatal(err)
	}
	again.expectClosed()
	dial(t, h.addr).expectClosed()
	if err := h.srv.Unban(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}

	// Reload: new port bounds apply to new sessions; the address may not change.
	cfg := h.srv.cfg
	cfg.Ports = []Port{{Address: cfg.Ports[0].Address, StartDifficulty: 0.5, MinDifficulty: 0.25, MaxDifficulty: 2}}
	if err := h.srv.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	n := dial(t, h.addr)
	n.handshake(testAddress(t, 76))
	if m := n.notification(message.MethodSetDifficulty); string(m.Params) != "[0.5]" {
		t.Fatalf("start difficulty after reload %s", m.Params)
	}
	if r := n.call("9", message.MethodSuggestDifficulty, `[100]`); r.code() != 0 {
		t.Fatal(r.Error)
	}
	if m := n.notification(message.MethodSetDifficulty); string(m.Params) != "[2]" {
		t.Fatalf("clamped to reloaded max: %s", m.Params)
	}
	bad := cfg
	bad.Ports = []Port{{Address: "127.0.0.1:1"}}
	if err := h.srv.Reload(bad); err == nil {
		t.Fatal("reload changed a port address")
	}
}

// TestTricklingLines: a line written a few bytes at a time is reassembled
// and answered, in both read modes; and an authorized miner that trickles
// bytes without ever ending a line does not keep itself alive: the idle
// deadline, set when it had nothing pending, is not moved by partial data.
func TestTricklingLines(t *testing.T) {
	for _, mode := range []string{ReadLoopEpoll, ReadLoopGoroutine} {
		t.Run(mode, func(t *testing.T) {
			h := startServer(t, func(c *Config) {
				c.ReadLoop, c.AuthorizeTimeout, c.IdleTimeout = mode, time.Minute, 600*time.Millisecond
			})
			c := dial(t, h.addr)
			line := `{"id":1,"method":"mining.subscribe","params":["test/1"]}` + "\n"
			for i := 0; i < len(line); i += 7 {
				c.write(line[i:min(i+7, len(line))])
				time.Sleep(2 * time.Millisecond)
			}
			if r := c.reply("1"); r.code() != 0 {
				t.Fatalf("subscribe written in pieces: %s", r.Error)
			}

			loris := dial(t, h.addr)
			loris.write(`{"id":1,"method":"mining.subscribe","params":["test/1"]}` + "\n" +
				`{"id":2,"method":"mining.authorize","params":["` + testAddress(t, 61) + `","x"]}` + "\n")
			if r := loris.reply("2"); string(r.Result) != "true" {
				t.Fatalf("authorize: %s %s", r.Result, r.Error)
			}
			stop := time.After(5 * time.Second) // far past the idle timeout
		trickle:
			for {
				select {
				case <-stop:
					t.Fatal("a miner trickling one unfinished line outlived the idle timeout by seconds")
				case <-time.After(50 * time.Millisecond):
					if _, err := loris.conn.Write([]byte(`{"id"`)); err != nil {
						break trickle // closed by the server
					}
				}
			}
			loris.expectClosed()
			waitFor(t, "idle close counted", func() bool { return h.srv.Stats().ClosedBy(CloseIdle) == 1 })
		})
	}
}
