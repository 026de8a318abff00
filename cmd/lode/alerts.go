package main

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/lode-pool/lode/alerts"
	"github.com/lode-pool/lode/internal/btcaddr"
	"github.com/lode-pool/lode/internal/redisstore"
)

// alertsWiring is what the API serves of the alerts.
type alertsWiring struct {
	handler, admin http.Handler
}

// alerts builds the alerts (docs/alerts.md) in the process that serves
// the API, when alerts.enabled: the subscription API, and the monitor with
// its dispatcher under the "alerts" Redis lease (one process sends, so a
// pool with several API processes does not notify twice). It looks at
// the workers' last shares, the found blocks and the payouts in Redis,
// and at Redis itself plus the checks the other roles of this process
// registered (node; payouts halted after a failed broadcast, when the
// payouts role runs here). Call it after the other roles, before the API.
func (w *wiring) alertsRole(context.Context) ([]component, error) {
	cfg := w.d.cfg
	if !cfg.Alerts.Enabled || !cfg.Has(RoleAPI) {
		return nil, nil
	}
	log := w.d.log.Named("alerts")
	params := cfg.ChainParams()
	a := alerts.NewAPI(cfg.Alerts, w.store, func(s string) (string, error) { return btcaddr.Canonical(s, params) })
	w.ext.alerts = &alertsWiring{handler: a.Handler(), admin: a.AdminHandler()}

	d := alerts.NewDispatcher(cfg.Alerts, w.store, log)
	checks := []alerts.Check{{Name: "redis", Run: w.store.Ping}}
	for _, c := range w.checks {
		checks = append(checks, alerts.Check{Name: c.Name, Run: c.Run})
	}
	src := storeAlerts{w.store}
	mon := alerts.NewMonitor(cfg.Alerts, alerts.Sources{Workers: src, Blocks: src, Payments: src, Checks: checks}, d, log)
	if err := w.metricsFor().Registry().Register(alerts.NewCollector(d)); err != nil {
		return nil, err
	}
	run := func(ctx context.Context) error {
		go func() { _ = d.Run(ctx) }()
		return mon.Run(ctx)
	}
	leased, err := w.leased("alerts", run)
	if err != nil {
		return nil, err
	}
	return []component{{name: "alerts", run: leased}}, nil
}

// storeAlerts reads the alert monitor's sources from Redis.
type storeAlerts struct{ s *redisstore.Store }

func (a storeAlerts) LastShares(ctx context.Context, since time.Time) ([]alerts.WorkerSeen, error) {
	ws, err := a.s.ActiveWorkers(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make([]alerts.WorkerSeen, len(ws))
	for i, w := range ws {
		out[i] = alerts.WorkerSeen{Worker: w.Worker, Address: w.Address, LastShare: w.LastShare}
	}
	return out, nil
}

func (a storeAlerts) RecentBlocks(ctx context.Context, limit int) ([]alerts.Block, error) {
	bs, err := a.s.Blocks(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]alerts.Block, len(bs))
	for i, b := range bs {
		out[i] = alerts.Block{Hash: b.Hash.String(), Height: b.Height, Status: string(b.Status), Finder: b.Finder}
	}
	return out, nil
}

func (a storeAlerts) RecentPayments(ctx context.Context, limit int) ([]alerts.Payment, error) {
	ps, err := a.s.Payouts(ctx, limit)
	if err != nil {
		return nil, err
	}
	var out []alerts.Payment
	for _, p := range ps {
		for _, o := range p.Outputs {
			out = append(out, alerts.Payment{ID: strconv.FormatInt(p.ID, 10), TxID: p.TxID, Address: o.Address,
				Amount: o.Amount, Status: string(p.State)})
		}
	}
	return out, nil
}
