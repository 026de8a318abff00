package alerts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/alerts"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/secret"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/internal/webhook"
)

// receiver is a real local HTTP receiver that keeps what it is sent.
type receiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	bodies [][]byte
	bad    int // deliveries with a wrong signature
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{secret: secret}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.secret != "" && !webhook.VerifySignature(r.secret, b, req.Header.Get(webhook.SignatureHeader)) {
			r.bad++
		}
		r.bodies = append(r.bodies, b)
	}))
	t.Cleanup(r.Close)
	return r
}

// types returns the event types received, in order.
func (r *receiver) types(t *testing.T) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.bodies {
		var ev alerts.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatalf("not an event: %s", b)
		}
		out = append(out, ev.Type)
	}
	return out
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// smtpServer is a minimal SMTP server (RFC 5321's commands a client
// needs) keeping the messages it accepts.
type smtpServer struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string // "to1,to2\n<data>"
}

func newSMTP(t *testing.T) *smtpServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpServer) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 test ESMTP")
	var to []string
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch cmd {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250 test")
		case "MAIL":
			to = nil
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			to = append(to, strings.Trim(strings.TrimPrefix(strings.SplitN(line, ":", 2)[1], " "), "<>"))
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go on")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, strings.Join(to, ",")+"\n"+string(data))
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}

func (s *smtpServer) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// sources the test scripts: what the stores would say.
type sources struct {
	mu       sync.Mutex
	workers  []alerts.WorkerSeen
	blocks   []alerts.Block
	payments []alerts.Payment
	nodeErr  error
}

func (s *sources) LastShares(context.Context, time.Time) ([]alerts.WorkerSeen, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]alerts.WorkerSeen(nil), s.workers...), nil
}

func (s *sources) RecentBlocks(context.Context, int) ([]alerts.Block, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]alerts.Block(nil), s.blocks...), nil
}

func (s *sources) RecentPayments(context.Context, int) ([]alerts.Payment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]alerts.Payment(nil), s.payments...), nil
}

func (s *sources) node(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodeErr
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const minerA, minerB = "bcrt1qminera", "bcrt1qminerb"

// The whole path: a miner gets a token from the admin API, subscribes a
// webhook and an email through the miners' API (stored in a real Redis);
// the monitor sees a worker go offline, a block found and another
// orphaned, payouts sent and stuck, the node failing; the operator's
// webhook, Discord-style chat and email receive every event, the miner's
// webhook and email only its address's (and not another miner's), signed;
// a chat receiver that is down is retried, then dropped and counted.
func TestAlertsEndToEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Config{Prefix: "al"})

	operator := newReceiver(t, "op-secret")
	chat := newReceiver(t, "")
	miner := newReceiver(t, "miner-secret")
	mailsrv := newSMTP(t)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String() + "/hook"
	_ = down.Close() // nothing listens there: connection refused

	fast := webhook.Config{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, MaxAttempts: 3, Timeout: 2 * time.Second}
	opHook := fast
	opHook.URL, opHook.Secret = operator.URL, secret.Literal("op-secret")
	cfg := alerts.Config{
		Enabled: true, Interval: 50 * time.Millisecond, WorkerOffline: 10 * time.Minute,
		TokenSecret: secret.Literal("tokens"), AllowPrivateTargets: true, Delivery: fast, Webhook: opHook,
		Chat:  []alerts.ChatConfig{{Kind: alerts.KindDiscord, URL: chat.URL}, {Kind: alerts.KindDiscord, URL: downURL}},
		Email: alerts.EmailConfig{Server: mailsrv.ln.Addr().String(), From: "pool@example.org", To: []string{"ops@example.org"}},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	api := alerts.NewAPI(cfg, store, nil)
	do := func(h http.Handler, method, path, token, body string) (int, string) {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	code, body := do(api.AdminHandler(), "POST", "/api/v1/admin/alerts/tokens", "", `{"address":"`+minerA+`"}`)
	var tok struct{ Token string }
	if code != 200 || json.Unmarshal([]byte(body), &tok) != nil || tok.Token == "" {
		t.Fatalf("token: %d %s", code, body)
	}
	sub := `{"address":"` + minerA + `","kind":"webhook","url":"` + miner.URL + `","secret":"miner-secret"}`
	if code, body := do(api.Handler(), "POST", "/api/v1/alerts/subscriptions", "wrong", sub); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d %s", code, body)
	}
	bOther := alerts.NewTokens("tokens").Token(minerB)
	if code, _ := do(api.Handler(), "POST", "/api/v1/alerts/subscriptions", bOther, sub); code != http.StatusUnauthorized {
		t.Fatalf("another address's token accepted: %d", code)
	}
	if code, body := do(api.Handler(), "POST", "/api/v1/alerts/subscriptions", tok.Token, sub); code != http.StatusCreated || strings.Contains(body, "miner-secret") {
		t.Fatalf("subscribe: %d %s", code, body)
	}
	mailSub := `{"address":"` + minerA + `","kind":"email","email":"Miner A <a@example.org>","events":["payout_sent"]}`
	if code, body := do(api.Handler(), "POST", "/api/v1/alerts/subscriptions", tok.Token, mailSub); code != http.StatusCreated {
		t.Fatalf("subscribe email: %d %s", code, body)
	}
	for _, bad := range []string{
		`{"address":"` + minerA + `","kind":"webhook","url":"` + miner.URL + `"}`,                                     // no secret
		`{"address":"` + minerA + `","kind":"sms","url":"` + miner.URL + `"}`,                                         // kind
		`{"address":"` + minerA + `","kind":"webhook","url":"file:///etc","secret":"x"}`,                              // url
		`{"address":"` + minerA + `","kind":"webhook","url":"` + miner.URL + `","secret":"x","events":["unhealthy"]}`, // operator-only event
		`{"address":"` + minerA + `","kind":"webhook","bogus":1}`,                                                     // unknown field
	} {
		if code, body := do(api.Handler(), "POST", "/api/v1/alerts/subscriptions", tok.Token, bad); code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
	code, body = do(api.Handler(), "GET", "/api/v1/alerts/subscriptions?address="+minerA, tok.Token, "")
	if code != 200 || strings.Count(body, `"id"`) != 2 || strings.Contains(body, "miner-secret") {
		t.Fatalf("list: %d %s", code, body)
	}

	d := alerts.NewDispatcher(cfg, store, zaptest.NewLogger(t))
	go func() { _ = d.Run(ctx) }()
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	now := t0
	src := &sources{
		workers:  []alerts.WorkerSeen{{Worker: minerA + ".rig1", Address: minerA, LastShare: t0}, {Worker: minerB + ".x", Address: minerB, LastShare: t0}},
		blocks:   []alerts.Block{{Hash: "b1", Height: 100, Status: "pending", Finder: minerB + ".x"}},
		payments: []alerts.Payment{{ID: "1", TxID: "t1", Address: minerA, Amount: 5000, Status: "confirmed"}},
	}
	mon := alerts.NewMonitor(cfg, alerts.Sources{Workers: src, Blocks: src, Payments: src,
		Checks: []alerts.Check{{Name: "node", Run: src.node}}}, d, zaptest.NewLogger(t))
	mon.SetClock(func() time.Time { return now })
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mon.Step(ctx); err != nil { // baseline: nothing to say
		t.Fatal(err)
	}
	// Eleven minutes later: minerA's rig stopped, minerB's still sends; a
	// new block; the old one orphaned; payouts to A sent and to B stuck;
	// the node fails.
	now = t0.Add(11 * time.Minute)
	src.mu.Lock()
	src.workers[1].LastShare = now
	src.blocks = []alerts.Block{{Hash: "b2", Height: 101, Status: "pending", Finder: minerA + ".rig1"},
		{Hash: "b1", Height: 100, Status: "orphaned", Finder: minerB + ".x"}}
	src.payments = append([]alerts.Payment{{ID: "2", TxID: "t2", Address: minerA, Amount: 7000, Status: "broadcast"},
		{ID: "2", TxID: "t2", Address: minerB, Amount: 9000, Status: "stuck"}}, src.payments...)
	src.nodeErr = io.ErrUnexpectedEOF
	src.mu.Unlock()
	if err := mon.Step(ctx); err != nil {
		t.Fatal(err)
	}
	// And back: the rig sends again, the node answers.
	now = now.Add(time.Minute)
	src.mu.Lock()
	src.workers[0].LastShare = now
	src.nodeErr = nil
	src.mu.Unlock()
	if err := mon.Step(ctx); err != nil {
		t.Fatal(err)
	}
	// A step with nothing new says nothing.
	if err := mon.Step(ctx); err != nil {
		t.Fatal(err)
	}

	opWant := []string{"unhealthy", "worker_offline", "block_found", "block_orphaned", "payout_sent", "payout_sent", "payout_stuck", "recovered", "worker_online"}
	waitFor(t, "operator webhook", func() bool { return operator.count() >= len(opWant) })
	waitFor(t, "miner webhook", func() bool { return miner.count() >= 3 })
	waitFor(t, "chat", func() bool { return chat.count() >= len(opWant) })
	waitFor(t, "emails", func() bool { return len(mailsrv.messages()) >= len(opWant)+1 })
	waitFor(t, "the down receiver given up", func() bool { return d.Counts()[alerts.KindDiscord].Failed == uint64(len(opWant)) })
	if got := operator.types(t); strings.Join(got, ",") != strings.Join(opWant, ",") || operator.bad != 0 {
		t.Errorf("operator got %v (%d badly signed), want %v", got, operator.bad, opWant)
	}
	if got := miner.types(t); strings.Join(got, ",") != "worker_offline,payout_sent,worker_online" || miner.bad != 0 {
		t.Errorf("miner A got %v (%d badly signed)", got, miner.bad)
	}
	chat.mu.Lock()
	if !bytes.Contains(chat.bodies[1], []byte(`"content":"lode: worker `+minerA+`.rig1 is offline`)) {
		t.Errorf("chat message %s", chat.bodies[1])
	}
	chat.mu.Unlock()
	var minerMails int
	for _, m := range mailsrv.messages() {
		to, data, _ := strings.Cut(m, "\n")
		if to == "a@example.org" {
			minerMails++
			if !strings.Contains(data, "payout of 7000 sat to "+minerA) {
				t.Errorf("miner email: %s", data)
			}
		} else if to != "ops@example.org" {
			t.Errorf("email to %q", to)
		}
	}
	if minerMails != 1 {
		t.Errorf("miner A got %d emails, want 1 (payout_sent only)", minerMails)
	}
	c := d.Counts()
	if c[alerts.KindWebhook].Delivered != uint64(len(opWant)+3) || c[alerts.KindEmail].Delivered != uint64(len(opWant)+1) {
		t.Errorf("counts %+v", c)
	}

	// Unsubscribe: the miner's webhook gets nothing more.
	code, body = do(api.Handler(), "GET", "/api/v1/alerts/subscriptions?address="+minerA, tok.Token, "")
	var list struct{ Subscriptions []alerts.Subscription }
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list.Subscriptions) != 2 {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, s := range list.Subscriptions {
		if code, _ := do(api.Handler(), "DELETE", "/api/v1/alerts/subscriptions/"+s.ID+"?address="+minerB, bOther, ""); code != http.StatusNotFound {
			t.Fatalf("B deleted A's subscription: %d", code)
		}
		if code, body := do(api.Handler(), "DELETE", "/api/v1/alerts/subscriptions/"+s.ID+"?address="+minerA, tok.Token, ""); code != http.StatusNoContent {
			t.Fatalf("unsubscribe: %d %s", code, body)
		}
	}
	if err := d.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(20 * time.Minute) // both rigs offline now
	if err := mon.Step(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "operator hears of the two offline rigs", func() bool { return operator.count() == len(opWant)+2 })
	if n := miner.count(); n != 3 {
		t.Errorf("unsubscribed miner got %d deliveries, want 3", n)
	}
}

// Without alerts.allow_private_targets a miner's webhook on a loopback
// address is never called: every attempt is refused before connecting,
// the event is given up and counted.
func TestPrivateTargetsRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	store := redisstore.New(rdb, redisstore.Config{Prefix: "al"})
	miner := newReceiver(t, "s")
	cfg := alerts.Config{Interval: time.Hour, Delivery: webhook.Config{InitialBackoff: time.Millisecond, MaxAttempts: 2}}
	if err := store.AddSubscription(ctx, alerts.Subscription{ID: "x", Address: minerA, Kind: alerts.KindWebhook, URL: miner.URL,
		Secret: "s", Events: []string{alerts.PayoutSent}}, 5); err != nil {
		t.Fatal(err)
	}
	d := alerts.NewDispatcher(cfg, store, zaptest.NewLogger(t))
	go func() { _ = d.Run(ctx) }()
	waitFor(t, "subscriptions loaded", func() bool { return d.Reload(ctx) == nil })
	d.Send(alerts.Event{Type: alerts.PayoutSent, Address: minerA, Amount: 1, TxID: "t"})
	waitFor(t, "the event given up", func() bool { return d.Counts()[alerts.KindWebhook].Failed == 1 })
	if miner.count() != 0 {
		t.Fatal("a loopback receiver was called")
	}
	// The per-address limit holds.
	for i := 0; i < 4; i++ {
		if err := store.AddSubscription(ctx, alerts.Subscription{ID: string(rune('a' + i)), Address: minerA, Kind: alerts.KindWebhook}, 5); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.AddSubscription(ctx, alerts.Subscription{ID: "z", Address: minerA}, 5); err != alerts.ErrTooMany {
		t.Fatalf("sixth subscription: %v", err)
	}
	if ok, err := store.RemoveSubscription(ctx, "a"); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if err := store.AddSubscription(ctx, alerts.Subscription{ID: "z", Address: minerA}, 5); err != nil {
		t.Fatalf("after a removal: %v", err)
	}
}

// A dispatcher whose Run ended (its lease lost) and runs again delivers
// again: the operator's channel restarts with it.
func TestDispatcherRunsAgain(t *testing.T) {
	operator := newReceiver(t, "s")
	cfg := alerts.Config{Interval: time.Hour, Webhook: webhook.Config{URL: operator.URL, Secret: secret.Literal("s")}}
	d := alerts.NewDispatcher(cfg, nil, zaptest.NewLogger(t))
	for round := 1; round <= 2; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = d.Run(ctx); close(done) }()
		d.Send(alerts.Event{Type: alerts.Recovered, Check: "node"})
		waitFor(t, "delivery", func() bool { return operator.count() == round })
		cancel()
		<-done
	}
}
