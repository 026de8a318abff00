package economics

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/blocktemplate"
)

// staticStats serves fixed worker statistics.
type staticStats []WorkerStats

func (s staticStats) WorkerStats(context.Context, time.Time) ([]WorkerStats, error) { return s, nil }

const testBits = 0x1702c4e4

func s21Stats() staticStats {
	const d = 65536.0
	hour := WindowSums{SumD: 4000 * d, SumD2: 4000 * d * d, N: 4000, MaxD: d, Connected: time.Hour}
	five := WindowSums{SumD: 330 * d, SumD2: 330 * d * d, N: 330, MaxD: d, Connected: 5 * time.Minute}
	day := WindowSums{SumD: 96000 * d, SumD2: 96000 * d * d, N: 96000, MaxD: d, Connected: 24 * time.Hour}
	return staticStats{
		{Worker: "bc1qminer.s21", Address: "bc1qminer", UserAgent: "Antminer S21/2024", Difficulty: d, Windows: [3]WindowSums{five, hour, day}},
		{Worker: "bc1qother", Address: "bc1qother", UserAgent: "", Difficulty: 1024, Windows: [3]WindowSums{{Connected: 5 * time.Minute}, {Connected: time.Hour}, {Connected: time.Hour}}},
	}
}

func newTestEngine(t *testing.T, cfg Config, stats Stats, now func() time.Time) *Engine {
	t.Helper()
	tmpl := TemplateInfo{Height: 900_000, Bits: testBits, CoinbaseValue: 312_500_000 + 2_000_000}
	e, err := New(cfg, Deps{Params: &chaincfg.MainNetParams, Templates: fakeTemplates{tmpl}, Stats: stats, Logger: zaptest.NewLogger(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Every money figure of one worker against a hand computation.
func TestEngineWorkerFigures(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cfg := Config{
		PoolFee: 0.02, RevenueBasis: BasisTemplate,
		Power:    PowerConfig{Currency: "USD", Price: 0.06, Overhead: 1.1},
		BTCPrice: BTCPriceConfig{Source: "static", Value: 100_000},
	}
	e := newTestEngine(t, cfg, s21Stats(), func() time.Time { return now })
	if err := e.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := e.Snapshot()
	D, _ := DifficultyFromBits(testBits)
	hp := 1e12 * 86400 / (D * 4294967296) * (312_500_000 + 2_000_000) // sat per TH/s per day
	near(t, "template hashprice", s.Network.Hashprice[BasisTemplate].SatPerTHDay, hp, 1e-12)
	near(t, "fiat per PH", *s.Network.Hashprice[BasisTemplate].FiatPerPHDay, hp*1000/1e8*100_000, 1e-12)
	if s.Network.TemplateFeesSat != 2_000_000 || s.Network.SubsidySat != 312_500_000 {
		t.Fatalf("%+v", s.Network)
	}

	w := s.Workers[0]
	if w.Device.Model != "Antminer S21" || w.Device.Source != SourceUserAgent {
		t.Fatalf("device %+v", w.Device)
	}
	H := 4294967296.0 * 4000 * 65536 / 3600 // Ĥ over the hour
	th := H / 1e12
	near(t, "hashrate", w.Hashrate[1].Hashrate, H, 1e-12)
	rev := th * hp * 0.98
	watts := th * 17.5 * 1.1
	satPerKWh := 0.06 / 100_000 * 1e8 // 60
	cost := watts * 24 / 1000 * satPerKWh
	m := w.Money
	near(t, "revenue", m.RevenueSat.Value, rev, 1e-12)
	near(t, "watts", m.Watts.Value, watts, 1e-12)
	near(t, "cost", m.CostSat.Value, cost, 1e-12)
	near(t, "margin", m.MarginSat.Value, rev-cost, 1e-12)
	half := z95 / math.Sqrt(4000)
	lo, hi := (rev-cost)*(1-half), (rev-cost)*(1+half)
	near(t, "margin low", m.MarginSat.Low, math.Min(lo, hi), 1e-12)
	near(t, "margin high", m.MarginSat.High, math.Max(lo, hi), 1e-12)
	near(t, "margin fiat", m.MarginFi.Value, (rev-cost)/1e8*100_000, 1e-12)
	near(t, "break-even sat/kWh", m.BreakEvenSatPerKWh, hp*0.98/(17.5*1.1*24/1000), 1e-12)
	near(t, "break-even USD/kWh", *m.BreakEvenPerKWh, hp*0.98/(17.5*1.1*24/1000)/1e8*100_000, 1e-12)
	near(t, "break-even J/TH", *m.BreakEvenJPerTH, hp*0.98/(1.1*24/1000*satPerKWh), 1e-12)

	// The second worker sent no share: an upper bound, the default device,
	// no revenue figure but a bounded one.
	o := s.Workers[1]
	if o.Hashrate[1].Method != MethodUpperBound || o.Hashrate[1].High <= 0 || o.Device.Source != SourceDefault || o.Money.RevenueSat.Value != 0 || o.Money.RevenueSat.High <= 0 {
		t.Fatalf("no-share worker %+v", o)
	}
	if o.Advice.Advice != AdviceHold {
		t.Fatalf("no-share worker advice %+v", o.Advice)
	}
	// Fleet: two models, ladder sorted by break-even (S21 is the cheaper
	// to run, so it has the higher break-even).
	if len(s.Fleet.Models) != 2 || s.Fleet.Ladder[0].Model != "unknown" || s.Fleet.Ladder[1].Model != "Antminer S21" {
		t.Fatalf("fleet %+v", s.Fleet)
	}
	if s.Fleet.CurrentSatPerKWh == nil || *s.Fleet.CurrentSatPerKWh != satPerKWh {
		t.Fatalf("current price %v", s.Fleet.CurrentSatPerKWh)
	}

	// What-if: free power, BTC at 50k, difficulty +10 %.
	free, btc, up := 0.0, 50_000.0, 10.0
	wi, err := e.WhatIf(WhatIf{PowerPrice: &free, BTCPrice: &btc, DifficultyChange: &up})
	if err != nil {
		t.Fatal(err)
	}
	ww := wi.Workers[0].Money
	near(t, "what-if revenue", ww.RevenueSat.Value, rev/1.1, 1e-12)
	near(t, "what-if margin", ww.MarginSat.Value, rev/1.1, 1e-12)
	near(t, "what-if fiat revenue", ww.RevenueFi.Value, rev/1.1/1e8*50_000, 1e-12)
	if wi.Workers[0].Advice.Advice != AdviceRun {
		t.Fatalf("what-if advice %+v", wi.Workers[0].Advice)
	}
	// ... and the real state did not move.
	if e.Snapshot() != s || s.Workers[0].Advice.Advice != AdviceHold {
		t.Fatal("what-if touched the live figures")
	}
	for _, bad := range []WhatIf{{BTCPrice: ptr(0.0)}, {PowerPrice: ptr(-1.0)}, {DifficultyChange: ptr(-100.0)}, {BTCPrice: ptr(math.NaN())}} {
		if _, err := e.WhatIf(bad); err == nil {
			t.Errorf("what-if %+v accepted", bad)
		}
	}
}

// A BTC feed that goes stale keeps its last value with its age, then the
// fiat figures (and, with a fiat power price, the cost) are dropped.
func TestEngineStaleBTCFeedDropsFiat(t *testing.T) {
	srv := newPriceServer(t)
	srv.set(90_000, false)
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cfg := Config{Power: PowerConfig{Price: 0.05}, BTCPrice: BTCPriceConfig{Source: "feed", Feed: FeedConfig{URL: srv.URL, Field: "data.price", MaxAge: 10 * time.Minute}}}
	e := newTestEngine(t, cfg, s21Stats(), func() time.Time { return clock })
	ctx := context.Background()
	if err := e.FetchPrices(ctx); err != nil {
		t.Fatal(err)
	}
	srv.set(0, true) // the feed goes down
	if err := e.FetchPrices(ctx); err == nil {
		t.Fatal("feed down: no error")
	}
	clock = clock.Add(5 * time.Minute)
	_ = e.Refresh(ctx)
	s := e.Snapshot()
	if s.Prices.BTC == nil || s.Prices.BTC.Stale || s.Prices.BTC.AgeSeconds != 300 || s.Prices.BTC.Error == "" {
		t.Fatalf("5 min: %+v", s.Prices.BTC)
	}
	if s.Workers[0].Money.CostSat == nil || s.Workers[0].Money.RevenueFi == nil {
		t.Fatal("fiat dropped while the price was fresh")
	}
	clock = clock.Add(6 * time.Minute)
	_ = e.Refresh(ctx)
	s = e.Snapshot()
	if s.Prices.BTC == nil || !s.Prices.BTC.Stale || s.Prices.BTC.Value != 90_000 {
		t.Fatalf("11 min: %+v", s.Prices.BTC)
	}
	m := s.Workers[0].Money
	if m.RevenueFi != nil || m.CostSat != nil || m.MarginSat != nil || m.BreakEvenPerKWh != nil || s.Network.Hashprice[BasisTemplate].FiatPerPHDay != nil {
		t.Fatalf("fiat kept after max age: %+v", m)
	}
	if m.RevenueSat.Value <= 0 || s.Workers[0].Advice.Advice != AdviceHold {
		t.Fatalf("sat figures lost or advice without a cost: %+v %+v", m.RevenueSat, s.Workers[0].Advice)
	}
}

func TestEngineForcedOffAndHTTP(t *testing.T) {
	now := time.Date(2026, 12, 6, 18, 30, 0, 0, time.UTC)
	cfg := Config{
		Power: PowerConfig{Currency: "sat", Price: 10,
			ForcedOff: []Window{{From: now.Add(-time.Hour), To: now.Add(time.Hour)}}},
	}
	e := newTestEngine(t, cfg, s21Stats(), func() time.Time { return now })
	mux := http.NewServeMux()
	h := NewHandler(e)
	mux.Handle(Prefix, h)
	mux.Handle(Prefix+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	get := func(path string, wantStatus int, into any) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s: %d, want %d", path, resp.StatusCode, wantStatus)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Fatalf("GET %s: content type %q", path, ct)
		}
		if into != nil {
			if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
	}
	get(Prefix, http.StatusServiceUnavailable, nil) // before the first refresh
	if err := e.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ov Overview
	get(Prefix, http.StatusOK, &ov)
	if ov.Workers != 2 || ov.Network.Hashprice[BasisTemplate].SatPerTHDay <= 0 || !strings.HasPrefix(ov.Prices.ForcedOff, "forced_off until") {
		t.Fatalf("overview %+v", ov)
	}
	var wa WorkersAnswer
	get(Prefix+"/workers?address=bc1qminer", http.StatusOK, &wa)
	if len(wa.Workers) != 1 || wa.Workers[0].Advice.Advice != AdviceCurtail || !strings.Contains(wa.Workers[0].Advice.Reason, "forced_off") ||
		wa.Total.Workers != 1 || wa.Total.Advice[AdviceCurtail] != 1 || wa.Total.Hashrate.Value != wa.Workers[0].Hashrate[1].Hashrate || wa.Total.MarginSat == nil {
		t.Fatalf("workers %+v", wa)
	}
	get(Prefix+"/workers?address=BC1QMINER", http.StatusOK, &wa) // bech32 is case-insensitive
	if len(wa.Workers) != 1 {
		t.Fatalf("upper-case address: %+v", wa)
	}
	get(Prefix+"/workers?address=nobody", http.StatusOK, &wa)
	if len(wa.Workers) != 0 {
		t.Fatalf("unknown address: %+v", wa)
	}
	var fa FleetAnswer
	get(Prefix+"/fleet", http.StatusOK, &fa)
	if fa.CurtailableW <= 0 || fa.CurtailableW != fa.TotalW {
		t.Fatalf("forced off: curtailable %v of %v W", fa.CurtailableW, fa.TotalW)
	}
	var wi WhatIfAnswer
	get(Prefix+"/whatif?power_price=1&address=bc1qminer", http.StatusOK, &wi)
	if len(wi.Workers) != 1 || wi.Prices.Power.Source != "whatif" {
		t.Fatalf("what-if %+v", wi)
	}
	get(Prefix+"/whatif?btc_price=abc", http.StatusBadRequest, nil)
	get(Prefix+"/whatif?difficulty_change=NaN", http.StatusBadRequest, nil)
	get(Prefix+"/whatif?power_price=-3", http.StatusBadRequest, nil)
	get(Prefix+"/whatif?power_price=1e308&btc_price=1e-300", http.StatusBadRequest, nil)
	get(Prefix+"/whatif?difficulty_change=1e300", http.StatusBadRequest, nil)
	get(Prefix+"/whatif?btc_price=1e-300", http.StatusOK, &wi) // finite figures, or none
	get(Prefix+"/nope", http.StatusNotFound, nil)
	resp, err := http.Post(srv.URL+Prefix, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

func TestJobTemplates(t *testing.T) {
	var none JobTemplates
	if _, ok := none.CurrentTemplate(); ok {
		t.Fatal("nil source gave a template")
	}
	job := &blocktemplate.Job{Template: &blocktemplate.Template{Height: 7, Bits: 0x207fffff, CoinbaseValue: 5_000_010_000}}
	src := JobTemplates(func() *blocktemplate.Job { return job })
	if ti, ok := src.CurrentTemplate(); !ok || ti != (TemplateInfo{Height: 7, Bits: 0x207fffff, CoinbaseValue: 5_000_010_000}) {
		t.Fatalf("%+v %v", ti, ok)
	}
	job = &blocktemplate.Job{} // rebuilt from a notify: no template
	if _, ok := src.CurrentTemplate(); ok {
		t.Fatal("job without template gave a template")
	}
}

// gather returns series counts per family and the value of each series
// by family and its first label's value.
func gather(t *testing.T, reg *prometheus.Registry) (map[string]int, map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, values := map[string]int{}, map[string]float64{}
	for _, mf := range mfs {
		counts[mf.GetName()] = len(mf.GetMetric())
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if len(m.GetLabel()) > 0 {
				key += "/" + m.GetLabel()[0].GetValue()
			}
			if g := m.GetGauge(); g != nil {
				values[key] = g.GetValue()
			}
		}
	}
	return counts, values
}

func TestCollector(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, perWorker := range []bool{false, true} {
		cfg := Config{Power: PowerConfig{Currency: "sat", Price: 50}, PerWorkerMetrics: perWorker}
		e := newTestEngine(t, cfg, s21Stats(), func() time.Time { return now })
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(NewCollector(e, NewNotifier(WebhookConfig{}, nil)))
		if counts, _ := gather(t, reg); len(counts) != 1 || counts["lode_economics_webhook_events_total"] != 3 {
			t.Fatalf("before refresh: %v", counts)
		}
		if err := e.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		counts, values := gather(t, reg)
		if want := map[bool]int{false: 0, true: 6}[perWorker]; counts["lode_economics_worker_hashrate"] != want {
			t.Fatalf("per-worker %v: %d worker hashrate series, want %d", perWorker, counts["lode_economics_worker_hashrate"], want)
		}
		s := e.Snapshot()
		if values["lode_economics_model_workers/Antminer S21"] != 1 || values["lode_economics_model_workers/unknown"] != 1 ||
			values["lode_economics_hashprice_sat_per_th_day/template"] != s.Network.Hashprice[BasisTemplate].SatPerTHDay ||
			values["lode_economics_power_price_sat_per_kwh"] != 50 {
			t.Fatalf("values %v", values)
		}
	}
}

// Which power price is in use: a fresh feed, else the schedule rate of the
// local time, else the flat price.
func TestEnginePowerPriceResolution(t *testing.T) {
	srv := newPriceServer(t)
	srv.set(123, false)
	clock := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC) // Friday 17:00 in Paris
	cfg := Config{Power: PowerConfig{Currency: "sat", Price: 40, Timezone: "Europe/Paris",
		Schedule: []TimeOfUse{{Days: []string{"fri"}, From: "17:00", To: "21:00", Price: 90}},
		Feed:     FeedConfig{URL: srv.URL, Field: "data.price", MaxAge: time.Minute}}}
	e := newTestEngine(t, cfg, nil, func() time.Time { return clock })
	ctx := context.Background()
	check := func(wantSource string, want float64) {
		t.Helper()
		_ = e.Refresh(ctx)
		p := e.Snapshot().Prices
		if p.Power == nil || p.Power.Source != wantSource || p.Power.Value != want || p.SatPerKWh == nil || *p.SatPerKWh != want {
			t.Fatalf("at %s: power %+v, want %s %v", clock, p.Power, wantSource, want)
		}
	}
	if err := e.FetchPrices(ctx); err != nil {
		t.Fatal(err)
	}
	check("feed", 123)
	clock = clock.Add(2 * time.Minute) // the feed's value is now past max age
	check("schedule", 90)
	clock = clock.Add(4 * time.Hour) // 21:02 in Paris: off-peak
	check("flat", 40)
}

// Run refreshes on its own and polls the feeds until its context ends.
func TestEngineRun(t *testing.T) {
	srv := newPriceServer(t)
	srv.set(95_000, false)
	cfg := Config{Refresh: 10 * time.Millisecond, Power: PowerConfig{Price: 0.05},
		BTCPrice: BTCPriceConfig{Source: "feed", Feed: FeedConfig{URL: srv.URL, Field: "data.price", Interval: 10 * time.Millisecond}}}
	e := newTestEngine(t, cfg, s21Stats(), time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	waitFor(t, "a snapshot with the fed BTC price", 10*time.Second, func() bool {
		s := e.Snapshot()
		return s != nil && s.Prices.BTC != nil && s.Prices.BTC.Value == 95_000 && s.Workers[0].Money.CostSat != nil
	})
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestTables(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	e := newTestEngine(t, Config{Power: PowerConfig{Currency: "sat", Price: 60}}, s21Stats(), func() time.Time { return now })
	if err := e.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := e.Snapshot()
	var b strings.Builder
	if err := WriteOverview(&b, overview(s)); err != nil {
		t.Fatal(err)
	}
	if err := WriteWorkers(&b, WorkersAnswer{Workers: s.Workers, Total: Total(s.Workers, time.Hour)}, 1); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"hashprice (template)", "62.24 sat/TH/day", "727.62 EH/s", "no forecast", "60 (flat",
		"bc1qminer.s21", "Antminer S21 (user_agent)", "312.75 TH/s [303.06 TH/s, 322.44 TH/s]", "< ", "TOTAL (2)"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// Any path and query gets a JSON answer with a sensible status, never a
// panic.
func FuzzHandler(f *testing.F) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tmpl := TemplateInfo{Height: 900_000, Bits: testBits, CoinbaseValue: 314_500_000}
	e, err := New(Config{Power: PowerConfig{Currency: "USD", Price: 0.06}, BTCPrice: BTCPriceConfig{Source: "static", Value: 1e5}},
		Deps{Params: &chaincfg.MainNetParams, Templates: fakeTemplates{tmpl}, Stats: s21Stats(), Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Refresh(context.Background()); err != nil {
		f.Fatal(err)
	}
	h := NewHandler(e)
	for _, seed := range []string{"", "/workers?address=bc1qminer", "/fleet", "/whatif?btc_price=1e5&power_price=0.1&difficulty_change=-5",
		"/whatif?btc_price=-1", "/whatif?power_price=NaN", "/whatif?difficulty_change=1e400", "/nope", "/workers?address=%zz"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, suffix string) {
		req, err := http.NewRequest(http.MethodGet, "http://lode"+Prefix+suffix, nil)
		if err != nil {
			return // not a URL: the server would not have routed it here
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
		default:
			t.Fatalf("%q: status %d", suffix, rec.Code)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%q: body is not JSON: %q", suffix, rec.Body.String())
		}
	})
}

// flakyStats fails when told to.
type flakyStats struct {
	staticStats
	fail bool
}

func (f *flakyStats) WorkerStats(ctx context.Context, now time.Time) ([]WorkerStats, error) {
	if f.fail {
		return nil, errors.New("redis down")
	}
	return f.staticStats.WorkerStats(ctx, now)
}

// A failed statistics read keeps the previous workers, and says how old
// they are.
func TestEngineKeepsWorkersWhenStatsFail(t *testing.T) {
	clock := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	st := &flakyStats{staticStats: s21Stats()}
	e := newTestEngine(t, Config{}, st, func() time.Time { return clock })
	ctx := context.Background()
	if err := e.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	st.fail = true
	clock = clock.Add(time.Minute)
	if err := e.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "redis down") {
		t.Fatalf("error %v", err)
	}
	s := e.Snapshot()
	if len(s.Workers) != 2 || !s.WorkersAsOf.Equal(clock.Add(-time.Minute)) || !s.Time.Equal(clock) {
		t.Fatalf("%d workers as of %v at %v", len(s.Workers), s.WorkersAsOf, s.Time)
	}
}
