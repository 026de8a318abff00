package economics

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap/zaptest"

	secretpkg "github.com/lode-pool/lode/internal/secret"
)

func TestAdvisorDwellAndHysteresis(t *testing.T) {
	a := NewAdvisor(0.1, 30*time.Minute)
	t0 := time.Unix(1_800_000_000, 0)
	cost := 1000.0
	run := Interval{Value: 500, Low: 400, High: 600}        // low > +100
	curtail := Interval{Value: -500, Low: -600, High: -400} // high < −100
	unsure := Interval{Value: 50, Low: -50, High: 150}      // straddles
	edge := Interval{Value: 150, Low: 100, High: 200}       // low == band: not above
	steps := []struct {
		at      time.Duration
		margin  Interval
		forced  string
		want    string
		changed bool
	}{
		{0, run, "", AdviceHold, false},                // first sight: hold, candidate run
		{29 * time.Minute, run, "", AdviceHold, false}, // dwell not over
		{30 * time.Minute, run, "", AdviceRun, true},
		{31 * time.Minute, unsure, "", AdviceRun, false},
		{40 * time.Minute, curtail, "", AdviceRun, false}, // candidate changes: dwell restarts
		{69 * time.Minute, curtail, "", AdviceRun, false},
		{70 * time.Minute, curtail, "", AdviceCurtail, true},
		{71 * time.Minute, edge, "", AdviceCurtail, false},
		{101 * time.Minute, edge, "", AdviceHold, true}, // edge is hold, after the dwell
		{102 * time.Minute, run, "DR event", AdviceCurtail, true},
		{103 * time.Minute, run, "DR event", AdviceCurtail, false},
		{104 * time.Minute, run, "", AdviceCurtail, false},
		{134 * time.Minute, run, "", AdviceRun, true},
	}
	for i, s := range steps {
		adv, _, changed := a.Observe("w", t0.Add(s.at), s.margin, cost, true, s.forced)
		if adv.Advice != s.want || changed != s.changed {
			t.Fatalf("step %d (+%v): %s changed=%v, want %s changed=%v (%s)", i, s.at, adv.Advice, changed, s.want, s.changed, adv.Reason)
		}
	}
	// Without a cost there is nothing to decide.
	if adv, _, _ := a.Observe("x", t0, run, 0, false, ""); adv.Advice != AdviceHold {
		t.Fatalf("no cost: %+v", adv)
	}
}

// webhookReceiver is a real local HTTP receiver that checks signatures.
type webhookReceiver struct {
	*httptest.Server
	secret string
	mu     sync.Mutex
	events []Event
	bad    int
}

func newWebhookReceiver(t *testing.T, secret string) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{secret: secret}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *webhookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || !VerifySignature(r.secret, body, req.Header.Get(SignatureHeader)) {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != req.Header.Get("X-Lode-Event-Id") {
		r.bad++
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.events = append(r.events, ev)
}

func (r *webhookReceiver) received() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// TestAdviceScriptedPriceSeries runs the engine over 15 simulated hours of
// a power price stepping around the S19's break-even with noise (served by
// a real local HTTP feed), with workers whose shares are simulated Poisson
// arrivals. The advice must change only on the real crossings, after
// min_dwell, never on the noise or on a 10-minute spike; every change
// reaches a real local webhook receiver, signed.
func TestAdviceScriptedPriceSeries(t *testing.T) {
	const secret = "fleet-secret"
	recv := newWebhookReceiver(t, secret)
	feed := newPriceServer(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var clock time.Time
	mu := sync.Mutex{}
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	setNow := func(t time.Time) { mu.Lock(); clock = t; mu.Unlock() }
	setNow(t0)

	const bits = 0x1702c4e4
	tmpl := TemplateInfo{Height: 900_000, Bits: bits, CoinbaseValue: 312_500_000 + 2_000_000}
	stats := &simStats{rng: newRand(11), workers: []*simWorker{
		{name: "bc1qa.s19-1", address: "bc1qa", ua: "Antminer S19/2020", hashrate: 95e12, difficulty: 65536},
		{name: "bc1qa.s19-2", address: "bc1qa", ua: "Antminer S19/2020", hashrate: 90e12, difficulty: 65536},
		{name: "bc1qb.gamma", address: "bc1qb", ua: "bitaxe/BM1370/v2.4.2", hashrate: 1.2e12, difficulty: 1024},
	}}
	notifier := NewNotifier(WebhookConfig{URL: recv.URL, Secret: secretpkg.Literal(secret), InitialBackoff: 10 * time.Millisecond}, zaptest.NewLogger(t))
	cfg := Config{
		PoolFee: 0.02,
		Power:   PowerConfig{Currency: "sat", Feed: FeedConfig{URL: feed.URL, Field: "data.price", MaxAge: time.Hour}},
		Advice:  AdviceConfig{Hysteresis: 0.1, MinDwell: 30 * time.Minute},
	}
	e, err := New(cfg, Deps{Params: &chaincfg.MainNetParams, Templates: fakeTemplates{tmpl}, Stats: stats, Notifier: notifier, Logger: zaptest.NewLogger(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { notifier.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// Break-even by hand: hashprice × (1 − fee) / (J/TH × 24/1000).
	d, _ := DifficultyFromBits(bits)
	be := Hashprice(d, btcutil.Amount(tmpl.CoinbaseValue)) * 0.98 / (34.5 * 24 / 1000)

	type phase struct {
		from, to time.Duration
		level    float64 // price / break-even
		noise    float64
	}
	h := time.Hour
	phases := []phase{
		{0, 3 * h, 0.7, 0.03},     // A: run
		{3 * h, 6 * h, 1.0, 0.05}, // B: around break-even: hold
		{6 * h, 9 * h, 1.4, 0.03}, // C: curtail
		{9 * h, 12 * h, 1.0, 0.05},
		{12 * h, 15 * h, 0.7, 0.03}, // E: run, with a 10-minute spike at 13:00
	}
	rng := newRand(3)
	const step = 5 * time.Minute
	type change struct {
		at       time.Duration
		key      string
		from, to string
	}
	var changes []change
	last := map[string]string{}
	for at := time.Duration(0); at < 15*h; at += step {
		setNow(t0.Add(at))
		level := 0.0
		noise := 0.0
		for _, p := range phases {
			if at >= p.from && at < p.to {
				level, noise = p.level, p.noise
			}
		}
		if at >= 13*h && at < 13*h+10*time.Minute {
			level = 1.5
		}
		feed.set(be*level*(1+noise*(2*rng.Float64()-1)), false)
		if err := e.FetchPrices(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := e.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		snap := e.Snapshot()
		if at == 0 {
			near(t, "engine break-even", snap.Fleet.Ladder[0].BreakEvenSatPerKWh, be, 1e-9)
		}
		for _, w := range snap.Workers {
			if w.Advice.Advice != last[w.Worker] {
				changes = append(changes, change{at, w.Worker, last[w.Worker], w.Advice.Advice})
				last[w.Worker] = w.Advice.Advice
			}
		}
		for _, m := range snap.Fleet.Models {
			if m.Advice.Advice != last[m.Model] {
				changes = append(changes, change{at, m.Model, last[m.Model], m.Advice.Advice})
				last[m.Model] = m.Advice.Advice
			}
		}
	}
	// The S19s and their model: run at 0:30, hold at 3:30, curtail at 6:30,
	// hold at 9:30, run at 12:30 (the dwell after each real crossing), and
	// nothing else; the Gamma (break-even far above every price) runs from
	// 0:30 on.
	want := map[string][]string{
		"bc1qa.s19-1":  {"hold", "run", "hold", "curtail", "hold", "run"},
		"bc1qa.s19-2":  {"hold", "run", "hold", "curtail", "hold", "run"},
		"Antminer S19": {"hold", "run", "hold", "curtail", "hold", "run"},
		"bc1qb.gamma":  {"hold", "run"},
		"Bitaxe Gamma": {"hold", "run"},
	}
	got := map[string][]string{}
	for _, c := range changes {
		got[c.key] = append(got[c.key], c.to)
		if c.from == "" {
			continue
		}
		// Each change lands one dwell after a phase boundary (give or take
		// a step): never in the middle of a phase.
		off := (c.at - 30*time.Minute) % (3 * h)
		if off < 0 || off > step {
			t.Errorf("%s changed %s→%s at +%v: not one dwell after a crossing", c.key, c.from, c.to, c.at)
		}
	}
	for k, w := range want {
		if len(got[k]) != len(w) {
			t.Errorf("%s: advice sequence %v, want %v", k, got[k], w)
			continue
		}
		for i := range w {
			if got[k][i] != w[i] {
				t.Errorf("%s: advice sequence %v, want %v", k, got[k], w)
				break
			}
		}
	}
	// Every change (not the first hold) reached the receiver, signed, in
	// order per key.
	wantEvents := 0
	for _, w := range want {
		wantEvents += len(w) - 1
	}
	waitFor(t, "webhook deliveries", 10*time.Second, func() bool { return len(recv.received()) >= wantEvents })
	evs := recv.received()
	if len(evs) != wantEvents || recv.bad != 0 {
		t.Fatalf("receiver got %d events (%d bad), want %d", len(evs), recv.bad, wantEvents)
	}
	perKey := map[string][]string{}
	for _, ev := range evs {
		perKey[ev.Key] = append(perKey[ev.Key], ev.Advice)
	}
	for k, w := range want {
		if len(perKey[k]) != len(w)-1 || (len(w) > 1 && perKey[k][len(w)-2] != w[len(w)-1]) {
			t.Errorf("%s: webhook advice %v, want %v", k, perKey[k], w[1:])
		}
	}
}
