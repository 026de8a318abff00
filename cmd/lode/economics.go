package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/economics"
)

// economics builds the miner-economics engine (docs/economics.md) in the
// process that serves the API, when economics.enabled: the chain reader
// over the node, the current template (the stratum role's manager, or the
// node's getblocktemplate in a process without it), the share statistics
// from Redis, the advice webhook and the Prometheus collector. The API
// serves its handler (w.apiHandlers).
func (w *wiring) economics(ctx context.Context) ([]component, error) {
	cfg := w.d.cfg
	if !cfg.Economics.Enabled || !cfg.Has(RoleAPI) {
		return nil, nil
	}
	log := w.d.log.Named("economics")
	node, err := w.node()
	if err != nil {
		return nil, err
	}
	params := cfg.ChainParams()
	ecfg := cfg.Economics
	if ecfg.PoolFee == 0 {
		ecfg.PoolFee = cfg.Pool.FeePercent / 100
	}
	var templates economics.Templates
	if mj, ok := w.jobs.(managerJobs); ok {
		templates = economics.JobTemplates(mj.m.Current)
	} else {
		templates = &nodeTemplates{node: node, maxAge: 10 * time.Second, timeout: cfg.Node.Timeout, log: log}
	}
	n := economics.NewNotifier(ecfg.Webhook, log.Named("webhook"))
	eng, err := economics.New(ecfg, economics.Deps{
		Params: params, Templates: templates, Chain: bitcoind.NewChainReader(node, params),
		Stats: w.store.EconomicsStats(), Notifier: n, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("economics: %w", err)
	}
	if err := w.metricsFor().Registry().Register(economics.NewCollector(eng, n)); err != nil {
		return nil, fmt.Errorf("economics metrics: %w", err)
	}
	w.ext.economicsHandler = economics.NewHandler(eng)
	return []component{{name: "economics", run: eng.Run}}, nil
}

// apiHandlers sets the API's handlers that other packages serve.
func (w *wiring) apiHandlers(c *api.Config) {
	if w.ext.economicsHandler != nil {
		c.Economics = w.ext.economicsHandler
	}
	if w.ext.alerts != nil {
		c.Alerts, c.AlertsAdmin = w.ext.alerts.handler, w.ext.alerts.admin
	}
}

// nodeTemplates is economics.Templates for a process without the stratum
// role: the node's getblocktemplate, asked at most every maxAge (the
// engine asks once per refresh, from its own goroutine).
type nodeTemplates struct {
	node    *bitcoind.Client
	maxAge  time.Duration
	timeout time.Duration
	log     *zap.Logger

	mu   sync.Mutex
	last economics.TemplateInfo
	ok   bool
	at   time.Time
}

func (n *nodeTemplates) CurrentTemplate() (economics.TemplateInfo, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ok && time.Since(n.at) < n.maxAge {
		return n.last, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(n.timeout, time.Second))
	defer cancel()
	raw, err := n.node.GetBlockTemplate(ctx, "")
	if err == nil {
		var t *blocktemplate.Template
		if t, err = blocktemplate.ParseTemplate(raw); err == nil {
			n.last, n.ok, n.at = economics.TemplateInfo{Height: t.Height, Bits: t.Bits, CoinbaseValue: t.CoinbaseValue}, true, time.Now()
			return n.last, true
		}
	}
	n.log.Warn("economics: no template from the node; keeping the last one", zap.Error(err))
	return n.last, n.ok
}

// wiringExt is what the economics and alerts builders leave for the API
// (a field of wiring).
type wiringExt struct {
	economicsHandler http.Handler
	alerts           *alertsWiring
}
