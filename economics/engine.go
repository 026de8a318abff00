package economics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap"
)

// TemplateInfo is what the figures need from the current block template.
type TemplateInfo struct {
	Height        int64
	Bits          uint32
	CoinbaseValue int64 // satoshis: subsidy + fees of the template
}

// Templates gives the current template; ok is false before the first one.
// blocktemplate.Manager satisfies it through a one-line adapter in cmd.
type Templates interface {
	CurrentTemplate() (t TemplateInfo, ok bool)
}

// WorkerStats is one worker's share statistics over the three windows.
type WorkerStats struct {
	Worker    string // full name as authorized: "address" or "address.worker"
	Address   string
	UserAgent string // from mining.subscribe
	// Difficulty is the worker's current share difficulty (for the upper
	// bound when a window holds no share); 0 if unknown.
	Difficulty float64
	// Windows holds the sums over 5 min, 1 h and 24 h (SumBuckets).
	Windows [3]WindowSums
}

// Windows in the order of WorkerStats.Windows.
var windows = [3]time.Duration{Window5m, Window1h, Window24h}

// Stats is the share ledger's statistics, as economics reads them: every
// worker seen in the last 24 h.
type Stats interface {
	WorkerStats(ctx context.Context, now time.Time) ([]WorkerStats, error)
}

// Deps are the engine's inputs. Chain and Stats may be nil (no trailing
// fees or network figures from the chain; no workers).
type Deps struct {
	Params    *chaincfg.Params
	Templates Templates
	Chain     Chain
	Stats     Stats
	Notifier  *Notifier // nil: no webhook
	Logger    *zap.Logger
	// Now is the clock (time.Now when nil); tests pass their own.
	Now func() time.Time
}

// Engine computes the figures every Refresh and publishes them as an
// immutable Snapshot.
type Engine struct {
	cfg        Config
	deps       Deps
	logger     *zap.Logger
	classifier *Classifier
	fees       *FeeTracker
	powerFeed  *Feed
	btcFeed    *Feed
	location   *time.Location

	mu        sync.Mutex // held by Refresh: the advisors and epoch cache
	advisor   *Advisor   // per worker
	models    *Advisor   // per model
	whatIf    *Advisor   // reasons only: what-if advice has no state
	epoch     BlockSummary
	haveEpoch bool

	snap atomic.Pointer[Snapshot]
}

// New validates cfg, applies defaults and returns an engine.
func New(cfg Config, deps Deps) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Params == nil {
		return nil, errors.New("economics: Deps.Params is required")
	}
	if deps.Templates == nil {
		return nil, errors.New("economics: Deps.Templates is required")
	}
	if deps.Logger == nil {
		deps.Logger = zap.NewNop()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	cfg = cfg.withDefaults()
	cls, err := NewClassifier(cfg.Devices.catalog(), cfg.Devices.Overrides, cfg.Devices.DefaultJPerTH)
	if err != nil {
		return nil, fmt.Errorf("economics: %w", err)
	}
	e := &Engine{cfg: cfg, deps: deps, logger: deps.Logger, classifier: cls, location: time.UTC,
		advisor: NewAdvisor(cfg.Advice.Hysteresis, cfg.Advice.MinDwell),
		models:  NewAdvisor(cfg.Advice.Hysteresis, cfg.Advice.MinDwell),
		whatIf:  NewAdvisor(cfg.Advice.Hysteresis, 0)}
	if cfg.Power.Timezone != "" {
		e.location, _ = time.LoadLocation(cfg.Power.Timezone) // checked by Validate
	}
	if deps.Chain != nil {
		e.fees = NewFeeTracker(deps.Chain, cfg.FeeWindowBlocks)
	}
	if cfg.Power.Feed.URL != "" {
		e.powerFeed = NewFeed(cfg.Power.Feed, false, deps.Logger.Named("power_feed"))
		e.powerFeed.now = deps.Now
	}
	if cfg.BTCPrice.Source == "feed" {
		e.btcFeed = NewFeed(cfg.BTCPrice.Feed, true, deps.Logger.Named("btc_feed"))
		e.btcFeed.now = deps.Now
	}
	return e, nil
}

// Config returns the configuration in force (defaults applied).
func (e *Engine) Config() Config { return e.cfg }

// Snapshot returns the latest figures (nil before the first refresh).
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// FetchPrices fetches every configured price feed once (Run polls them on
// their own); for one-shot use such as lodectl, and tests.
func (e *Engine) FetchPrices(ctx context.Context) error {
	var errs []error
	for _, f := range []*Feed{e.powerFeed, e.btcFeed} {
		if f != nil {
			errs = append(errs, f.Fetch(ctx))
		}
	}
	return errors.Join(errs...)
}

// Run starts the price feeds' pollers and the refresh loop and returns when
// ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range []*Feed{e.powerFeed, e.btcFeed} {
		if f != nil {
			wg.Add(1)
			go func() { defer wg.Done(); f.pollLoop(ctx) }()
		}
	}
	if e.deps.Notifier != nil {
		wg.Add(1)
		go func() { defer wg.Done(); e.deps.Notifier.Run(ctx) }()
	}
	e.refreshLoop(ctx)
	wg.Wait()
	return nil
}

// refreshLoop refreshes every cfg.Refresh until ctx ends.
func (e *Engine) refreshLoop(ctx context.Context) {
	t := time.NewTicker(e.cfg.Refresh)
	defer t.Stop()
	for {
		if err := e.Refresh(ctx); err != nil && ctx.Err() == nil {
			e.logger.Warn("economics refresh incomplete", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh reads the template, the chain and the statistics, computes every
// figure and publishes a new snapshot. A failing chain or statistics read
// is returned, but the snapshot is still published with what is known
// (the chain figures from the cache, the workers of the previous snapshot).
func (e *Engine) Refresh(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.deps.Now()
	var errs []error
	tmpl, ok := e.deps.Templates.CurrentTemplate()
	if !ok {
		return errors.New("economics: no template yet")
	}
	in := inputs{now: now, tmpl: tmpl}
	if e.fees != nil {
		if err := e.fees.Update(ctx); err != nil {
			errs = append(errs, err)
		}
		in.blocks = e.fees.Blocks()
		if err := e.updateEpoch(ctx, tmpl.Height, in.blocks); err != nil {
			errs = append(errs, err)
		}
		if e.haveEpoch {
			in.epochFirst = e.epoch.Time
			in.haveEpoch = true
		}
	}
	if e.deps.Stats != nil {
		ws, err := e.deps.Stats.WorkerStats(ctx, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("economics: statistics: %w", err))
			if prev := e.snap.Load(); prev != nil {
				in.workers, in.workersAsOf = prev.in.workers, prev.in.workersAsOf
			}
		} else {
			in.workers, in.workersAsOf = ws, now
		}
	}
	in.power, in.btc = e.prices(now, nil)
	snap := e.compute(in, e.advisor, e.models)
	e.snap.Store(snap)
	return errors.Join(errs...)
}

// updateEpoch keeps the summary of the current epoch's first block.
func (e *Engine) updateEpoch(ctx context.Context, height int64, blocks []BlockSummary) error {
	start := height - height%RetargetInterval
	if e.haveEpoch && e.epoch.Height == start {
		return nil
	}
	for _, b := range blocks {
		if b.Height == start {
			e.epoch, e.haveEpoch = b, true
			return nil
		}
	}
	if start >= height { // the template is the epoch's first block
		e.haveEpoch = false
		return nil
	}
	b, err := e.deps.Chain.BlockSummary(ctx, start)
	if err != nil {
		e.haveEpoch = false
		return fmt.Errorf("economics: epoch start block %d: %w", start, err)
	}
	e.epoch, e.haveEpoch = b, true
	return nil
}

// PriceFigure is a price in use, with where it came from and its age.
type PriceFigure struct {
	Value float64 `json:"value"`
	// Source: flat, schedule, feed, static, whatif.
	Source string `json:"source"`
	// AgeSeconds is the feed value's age (feeds only).
	AgeSeconds float64 `json:"age_seconds,omitempty"`
	// Stale is true when a feed's last value passed its max age: shown,
	// not used.
	Stale bool   `json:"stale,omitempty"`
	Error string `json:"error,omitempty"`
}

// whatIfPrices overrides the configured prices.
type whatIfPrices struct {
	power, btc *float64
}

// prices resolves the power price (per kWh in the power currency) and the
// BTC price at now; a nil Value-bearing figure means none usable.
func (e *Engine) prices(now time.Time, w *whatIfPrices) (power, btc *PriceFigure) {
	p := e.cfg.Power
	switch {
	case w != nil && w.power != nil:
		power = &PriceFigure{Value: *w.power, Source: "whatif"}
	default:
		if e.powerFeed != nil {
			fv := e.powerFeed.Value(now)
			if fv.Have {
				power = &PriceFigure{Value: fv.Value, Source: "feed", AgeSeconds: fv.Age.Seconds(), Stale: !fv.Fresh, Error: fv.Err}
			} else {
				power = &PriceFigure{Source: "feed", Stale: true, Error: fv.Err}
			}
		}
		if power == nil || power.Stale {
			local := now.In(e.location)
			var fallback *PriceFigure
			for _, r := range p.Schedule {
				if r.applies(local) {
					fallback = &PriceFigure{Value: r.Price, Source: "schedule"}
					break
				}
			}
			if fallback == nil && (p.Price > 0 || (len(p.Schedule) > 0 && e.powerFeed == nil)) {
				fallback = &PriceFigure{Value: p.Price, Source: "flat"}
			}
			if fallback != nil {
				if power != nil { // say why the feed is not used
					fallback.Error = strings.TrimSpace("feed stale " + power.Error)
				}
				power = fallback
			}
		}
	}
	switch {
	case w != nil && w.btc != nil:
		btc = &PriceFigure{Value: *w.btc, Source: "whatif"}
	case e.cfg.BTCPrice.Source == "static":
		btc = &PriceFigure{Value: e.cfg.BTCPrice.Value, Source: "static"}
	case e.btcFeed != nil:
		fv := e.btcFeed.Value(now)
		btc = &PriceFigure{Value: fv.Value, Source: "feed", AgeSeconds: fv.Age.Seconds(), Stale: !fv.Fresh, Error: fv.Err}
	}
	return power, btc
}

// forcedOff returns the reason when now is in a forced_off window.
func (e *Engine) forcedOff(now time.Time) string {
	for _, w := range e.cfg.Power.ForcedOff {
		if !now.Before(w.From) && now.Before(w.To) {
			return "forced_off until " + w.To.UTC().Format(time.RFC3339)
		}
	}
	return ""
}

// inputs is everything one computation reads.
type inputs struct {
	now         time.Time
	tmpl        TemplateInfo
	blocks      []BlockSummary
	epochFirst  time.Time
	haveEpoch   bool
	workers     []WorkerStats
	workersAsOf time.Time // when the statistics were read (older after a failed read)
	power, btc  *PriceFigure
	// what-if
	difficultyFactor float64 // 0: none
}

// usable reports a price figure that may be used for figures.
func usable(p *PriceFigure) bool { return p != nil && !p.Stale && finite(p.Value) }

// slab hands out pointers into a few large arrays, so the optional
// figures of 100,000 workers cost a handful of allocations per refresh
// instead of several per worker.
type slab struct {
	iv []Interval
	f  []float64
}

func (s *slab) interval(v Interval) *Interval {
	if len(s.iv) == cap(s.iv) {
		s.iv = make([]Interval, 0, max(2*cap(s.iv), 64))
	}
	s.iv = append(s.iv, v)
	return &s.iv[len(s.iv)-1]
}

func (s *slab) float(v float64) *float64 {
	if len(s.f) == cap(s.f) {
		s.f = make([]float64, 0, max(2*cap(s.f), 64))
	}
	s.f = append(s.f, v)
	return &s.f[len(s.f)-1]
}

// perTH holds the per-TH/s-per-day rates a worker's money scales with.
type perTH struct {
	revenueSat float64 // sats per TH/s per day after the pool fee
	satPerKWh  float64
	costKnown  bool
	btc        float64 // fiat per BTC, 0 if none
	overhead   float64
}

// money computes a worker's or model's money from its hashrate interval
// (H/s) and efficiency.
func (r perTH) money(h Interval, jPerTH float64, sl *slab) Money {
	th := func(x float64) float64 { return x / TeraHash }
	m := Money{
		RevenueSat: Interval{th(h.Value) * r.revenueSat, th(h.Low) * r.revenueSat, th(h.High) * r.revenueSat},
		Watts:      Interval{th(h.Value) * jPerTH * r.overhead, th(h.Low) * jPerTH * r.overhead, th(h.High) * jPerTH * r.overhead},
	}
	kWhPerTHDay := jPerTH * r.overhead * 24 / 1000
	if kWhPerTHDay > 0 {
		m.BreakEvenSatPerKWh = r.revenueSat / kWhPerTHDay
	}
	if r.btc > 0 {
		m.BreakEvenPerKWh = sl.float(m.BreakEvenSatPerKWh * r.btc / btcutil.SatoshiPerBitcoin)
		m.RevenueFi = sl.interval(scale(m.RevenueSat, r.btc/btcutil.SatoshiPerBitcoin))
	}
	if !r.costKnown {
		return m
	}
	costPerTH := kWhPerTHDay * r.satPerKWh
	cost := Interval{th(h.Value) * costPerTH, th(h.Low) * costPerTH, th(h.High) * costPerTH}
	per := r.revenueSat - costPerTH
	lo, hi := th(h.Low)*per, th(h.High)*per
	margin := Interval{th(h.Value) * per, math.Min(lo, hi), math.Max(lo, hi)}
	m.CostSat, m.MarginSat = sl.interval(cost), sl.interval(margin)
	if r.satPerKWh > 0 {
		m.BreakEvenJPerTH = sl.float(r.revenueSat / (r.overhead * 24 / 1000 * r.satPerKWh))
	}
	if r.btc > 0 {
		f := r.btc / btcutil.SatoshiPerBitcoin
		m.CostFi, m.MarginFi = sl.interval(scale(cost, f)), sl.interval(scale(margin, f))
	}
	return m
}

func scale(i Interval, f float64) Interval { return Interval{i.Value * f, i.Low * f, i.High * f} }

func ptr[T any](v T) *T { return &v }

// hashprice builds one HashpriceValue.
func hashprice(d float64, subsidy btcutil.Amount, fees float64, basis string, btc float64) HashpriceValue {
	reward := float64(subsidy) + fees
	hp := ExpectedBlocksPerTHDay(d) * reward
	v := HashpriceValue{FeesSat: fees, RewardSat: reward, SatPerTHDay: hp, SatPerPHDay: hp * 1000, BTCPerPHDay: hp * 1000 / btcutil.SatoshiPerBitcoin, BasisOfFigure: basis}
	if btc > 0 {
		v.FiatPerPHDay = ptr(v.BTCPerPHDay * btc)
		v.FiatPerTHDay = ptr(v.BTCPerPHDay * btc / 1000)
	}
	return v
}

// compute turns inputs into a snapshot; with a nil advisor (what-if) the
// advice is the immediate target, without dwell or webhook.
func (e *Engine) compute(in inputs, adv, modelAdv *Advisor) *Snapshot {
	s := &Snapshot{Time: in.now, WorkersAsOf: in.workersAsOf, in: in}
	net := &s.Network
	net.Height = in.tmpl.Height
	net.Bits = fmt.Sprintf("%08x", in.tmpl.Bits)
	d, err := DifficultyFromBits(in.tmpl.Bits)
	if err != nil {
		e.logger.Warn("template bits", zap.Error(err))
	}
	if in.difficultyFactor > 0 {
		d *= in.difficultyFactor
	}
	net.Difficulty = d
	subsidy := Subsidy(in.tmpl.Height, e.deps.Params)
	net.SubsidySat = int64(subsidy)
	net.TemplateFeesSat = in.tmpl.CoinbaseValue - int64(subsidy)
	net.ExpectedBlocksPerTHDay = ExpectedBlocksPerTHDay(d)
	net.ImpliedHashrate = ImpliedNetworkHashrate(d)
	net.RevenueBasis = e.cfg.RevenueBasis

	// Prices.
	s.Prices = Prices{Currency: e.cfg.Power.Currency, Power: in.power, BTC: in.btc, ForcedOff: e.forcedOff(in.now)}
	btc := 0.0
	if usable(in.btc) && in.btc.Value > 0 {
		btc = in.btc.Value
	}
	rates := perTH{btc: btc, overhead: e.cfg.Power.Overhead}
	if usable(in.power) {
		if strings.EqualFold(e.cfg.Power.Currency, "sat") {
			rates.satPerKWh, rates.costKnown = in.power.Value, true
		} else if btc > 0 {
			rates.satPerKWh, rates.costKnown = in.power.Value/btc*btcutil.SatoshiPerBitcoin, true
		}
		if !finite(rates.satPerKWh) { // an absurd BTC price: no usable conversion
			rates.satPerKWh, rates.costKnown = 0, false
		}
		if rates.costKnown {
			s.Prices.SatPerKWh = ptr(rates.satPerKWh)
		}
	}

	// Hashprice on both bases.
	net.Hashprice = map[string]HashpriceValue{BasisTemplate: hashprice(d, subsidy, float64(net.TemplateFeesSat), BasisTemplate, btc)}
	if len(in.blocks) > 0 {
		t := SummariseFees(in.blocks)
		net.Trailing = &t
		net.Hashprice[BasisTrailingMean] = hashprice(d, subsidy, t.Mean, BasisTrailingMean, btc)
		net.Hashprice[BasisTrailingMedian] = hashprice(d, subsidy, t.Median, BasisTrailingMedian, btc)
		// The observed hashrate needs consecutive blocks: after a partial
		// read of the window use the run of blocks ending at the tip.
		first := len(in.blocks) - 1
		for first > 0 && in.blocks[first-1].Height == in.blocks[first].Height-1 {
			first--
		}
		headers := make([]BlockHeader, 0, len(in.blocks)-first)
		for _, b := range in.blocks[first:] {
			headers = append(headers, BlockHeader{Height: b.Height, Time: b.Time, Bits: b.Bits})
		}
		if h, err := ObservedNetworkHashrate(headers); err == nil {
			net.ObservedHashrate, net.ObservedBlocks = ptr(h), len(headers)-1
		}
	}
	basis, ok := net.Hashprice[e.cfg.RevenueBasis]
	if !ok {
		basis = net.Hashprice[BasisTemplate]
		net.RevenueBasis = BasisTemplate
	}
	rates.revenueSat = basis.SatPerTHDay * (1 - e.cfg.PoolFee)

	// Retarget.
	if in.haveEpoch {
		net.Retarget = ForecastRetarget(d, in.tmpl.Height, in.epochFirst, in.now, e.deps.Params)
	} else {
		// Without the epoch's first block there is only the epoch's shape.
		r := ForecastRetarget(d, in.tmpl.Height, in.now, in.now, e.deps.Params)
		net.Retarget = Retarget{EpochStart: r.EpochStart, NextHeight: r.NextHeight, Blocks: r.Blocks, Difficulty: d, Reason: r.Reason}
		if r.Reason == "" || r.Elapsed == 0 && r.Blocks >= MinRetargetBlocks {
			net.Retarget.Reason = "the epoch's first block is not known (no chain reader, or the node did not answer)"
		}
	}
	if r := net.Retarget; r.Available {
		after := func(dn float64) float64 { return basis.SatPerTHDay * d / dn }
		net.HashpriceAfterRetarget = &Interval{Value: after(r.NextDifficulty), Low: after(r.High), High: after(r.Low)}
	}

	// Workers.
	s.Workers = make([]WorkerFigures, len(in.workers))
	s.byAddress = make(map[string][]int)
	sl := &slab{iv: make([]Interval, 0, 5*len(in.workers)+64), f: make([]float64, 0, 2*len(in.workers)+64)}
	agents := make(map[string]agentInfo) // user agents are few: parse each once per refresh
	forced := s.Prices.ForcedOff
	if adv != nil {
		adv.Begin()
		modelAdv.Begin()
	}
	wi := slices.Index(windows[:], e.cfg.RevenueWindow)
	models := make(map[string]*ModelFigures)
	for i := range in.workers {
		ws := &in.workers[i]
		f := &s.Workers[i]
		f.Worker, f.Address = ws.Worker, ws.Address
		for k, w := range windows {
			f.Hashrate[k] = EstimateHashrate(ws.Windows[k], w, ws.Difficulty)
		}
		est := f.Hashrate[wi]
		ai, ok := agents[ws.UserAgent]
		if !ok {
			ai = e.classifier.parseAgent(ws.UserAgent)
			agents[ws.UserAgent] = ai
		}
		f.Device = e.classifier.classify(ws.Worker, ai, est.Hashrate/TeraHash)
		h := Interval{Value: est.Hashrate, Low: est.Low, High: est.High}
		f.Money = rates.money(h, f.Device.JPerTH, sl)
		f.Advice = e.advise(adv, "worker", ws.Worker, in.now, f.Money, rates.costKnown, forced)
		s.byAddress[ws.Address] = append(s.byAddress[ws.Address], i)

		m := models[f.Device.Model]
		if m == nil {
			m = &ModelFigures{Model: f.Device.Model, Vendor: f.Device.Vendor, JPerTH: f.Device.JPerTH}
			models[f.Device.Model] = m
		}
		m.Workers++
		m.Hashrate.Value += h.Value
		m.Hashrate.Low += h.Low
		m.Hashrate.High += h.High
		if f.Advice.Advice == AdviceCurtail {
			m.CurtailableW += f.Money.Watts.Value
		}
	}
	// Models: money from the summed hashrate interval (the sum of the
	// workers' bounds: conservative), advice per model.
	for _, m := range models {
		m.Money = rates.money(m.Hashrate, m.JPerTH, sl)
		m.Advice = e.advise(modelAdv, "model", m.Model, in.now, m.Money, rates.costKnown, forced)
		s.Fleet.Models = append(s.Fleet.Models, *m)
		s.Fleet.CurtailableW += m.CurtailableW
		s.Fleet.TotalW += m.Money.Watts.Value
	}
	if adv != nil {
		adv.Sweep()
		modelAdv.Sweep()
	}
	slices.SortFunc(s.Fleet.Models, func(a, b ModelFigures) int { return strings.Compare(a.Model, b.Model) })
	for _, m := range s.Fleet.Models {
		step := LadderStep{Model: m.Model, BreakEvenSatPerKWh: m.Money.BreakEvenSatPerKWh, BreakEvenPerKWh: m.Money.BreakEvenPerKWh}
		if rates.costKnown {
			step.Profitable = ptr(rates.satPerKWh < m.Money.BreakEvenSatPerKWh)
			if !*step.Profitable {
				s.Fleet.CurrentRung++
			}
		}
		s.Fleet.Ladder = append(s.Fleet.Ladder, step)
	}
	slices.SortStableFunc(s.Fleet.Ladder, func(a, b LadderStep) int {
		return cmpFloat(a.BreakEvenSatPerKWh, b.BreakEvenSatPerKWh)
	})
	if rates.costKnown {
		s.Fleet.CurrentSatPerKWh = ptr(rates.satPerKWh)
	}
	return s
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// advise runs the advisor (or, for what-if, the immediate target) and
// sends a webhook event on a change.
func (e *Engine) advise(adv *Advisor, scope, key string, now time.Time, m Money, costKnown bool, forced string) Advice {
	var margin Interval
	var cost float64
	if m.MarginSat != nil {
		margin, cost = *m.MarginSat, m.CostSat.Value
	}
	if adv == nil { // what-if: where the figures point, at once
		switch {
		case forced != "":
			return Advice{Advice: AdviceCurtail, Reason: forced, Since: now}
		case !costKnown:
			return Advice{Advice: AdviceHold, Reason: "no power price: cost unknown", Since: now}
		}
		a, reason := e.whatIf.target(margin, cost)
		return Advice{Advice: a, Reason: reason, Since: now}
	}
	a, prev, changed := adv.Observe(key, now, margin, cost, costKnown, forced)
	if changed && e.deps.Notifier != nil {
		e.deps.Notifier.Notify(Event{Scope: scope, Key: key, Advice: a.Advice, Previous: prev.Advice, Reason: a.Reason, Since: a.Since, Watts: m.Watts.Value, MarginSatsPerDay: m.MarginSat})
	}
	return a
}

// WhatIf are the changes a what-if applies; nil fields keep the current
// value.
type WhatIf struct {
	BTCPrice   *float64 // fiat per BTC
	PowerPrice *float64 // per kWh in the power currency
	// DifficultyChange is a relative change in percent (+10: D × 1.1).
	DifficultyChange *float64
}

// WhatIf recomputes the latest snapshot's figures under w, without touching
// the advice state or sending webhooks. The advice given is the immediate
// target (no dwell).
func (e *Engine) WhatIf(w WhatIf) (*Snapshot, error) {
	base := e.snap.Load()
	if base == nil {
		return nil, errors.New("economics: no figures yet")
	}
	for name, v := range map[string]*float64{"btc_price": w.BTCPrice, "power_price": w.PowerPrice, "difficulty_change": w.DifficultyChange} {
		if v != nil && !finite(*v) {
			return nil, fmt.Errorf("what-if %s: not a number", name)
		}
	}
	// Bounds keep every figure finite (and far beyond any real price).
	if w.BTCPrice != nil && (*w.BTCPrice <= 0 || *w.BTCPrice > 1e12) {
		return nil, errors.New("what-if btc_price: must be positive, at most 1e12")
	}
	if w.PowerPrice != nil && (*w.PowerPrice < 0 || *w.PowerPrice > 1e12) {
		return nil, errors.New("what-if power_price: must be 0 to 1e12 per kWh")
	}
	if w.DifficultyChange != nil && (*w.DifficultyChange <= -100 || *w.DifficultyChange > 1e6) {
		return nil, errors.New("what-if difficulty_change: must be above -100 and at most 1e6 (percent)")
	}
	in := base.in
	in.power, in.btc = e.prices(base.Time, &whatIfPrices{power: w.PowerPrice, btc: w.BTCPrice})
	if w.DifficultyChange != nil {
		in.difficultyFactor = 1 + *w.DifficultyChange/100
	}
	return e.compute(in, nil, nil), nil
}
