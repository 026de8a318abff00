package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/btcaddr"
	"github.com/lode-pool/lode/internal/redisstore"
)

// run connects the shared services, builds the components of the configured
// roles and runs them until ctx ends.
func (d *daemon) run(ctx context.Context) error {
	cfg := d.cfg
	d.log.Info("lode starting", zap.String("network", cfg.Network), zap.Strings("roles", cfg.Roles))
	w := &wiring{d: d}
	// A stratum process keeps mining while Redis is down: the share ledger
	// spools (ledger.spool_dir is required with the stratum role), so it
	// may also start without Redis. The other roles retry on their own
	// (leases, unlocker steps, API reads), so they come along.
	spools := cfg.Has(RoleStratum) && cfg.Ledger.SpoolDir != ""
	store, err := redisstore.Connect(ctx, redisstore.ConnectConfig{
		Addr: cfg.Redis.Address, Password: d.secrets.RedisPassword, DB: cfg.Redis.DB,
		Prefix: cfg.Redis.Prefix, Logger: d.log.Named("redis"), AllowUnreachable: spools,
		Mode: cfg.Redis.Mode, Addrs: cfg.Redis.Addrs, MasterName: cfg.Redis.SentinelMaster,
		SentinelPassword: d.secrets.RedisSentinelPassword,
		MinReplicasAcked: cfg.Redis.MinReplicasAcked, ReplicaAckTimeout: cfg.Redis.ReplicaAckTimeout,
	})
	if store == nil {
		return err
	}
	if err != nil {
		d.log.Error("redis unreachable at start; shares go to the spool until it answers",
			zap.String("spool_dir", cfg.Ledger.SpoolDir), zap.Error(err))
	}
	w.store = store
	defer func() { _ = store.Client().Close() }()
	defer func() {
		if w.nodeClient != nil {
			w.nodeClient.Close()
		}
	}()

	var comps []component
	// The stratum role comes first: it provides the job source and the
	// snapshots the metrics and the API read.
	for _, build := range []func(context.Context) ([]component, error){
		w.stratum, w.unlocker, w.payouts, w.economics, w.alertsRole, w.api,
	} {
		c, err := build(ctx)
		if err != nil {
			return err
		}
		comps = append(comps, c...)
	}
	return d.runComponents(ctx, comps)
}

// wiring holds what several roles share.
type wiring struct {
	d       *daemon
	store   *redisstore.Store
	metrics *api.Metrics
	// metricsOnce guards the creation of metrics: without the api role the
	// first use comes from concurrent share handlers.
	metricsOnce sync.Once
	// jobs is the current job source, set by the stratum role; nil in a
	// process without it.
	jobs jobSource
	// sources feed the metrics at scrape time; the roles fill them in.
	sources api.Sources
	// checks are readiness checks the roles add (node reachable, ...).
	checks []api.Check
	// banner is the stratum server's ban control when it offers one.
	banner api.Banner
	// nodeClient is shared by the roles that talk to the node.
	nodeClient *bitcoind.Client
	// ext holds the economics and alerts handlers for the API
	// (economics.go, alerts.go).
	ext wiringExt
}

// metricsFor returns the metrics, created on first use with the sources the
// roles registered so far (the stratum role registers before anyone asks).
func (w *wiring) metricsFor() *api.Metrics {
	w.metricsOnce.Do(func() {
		if w.jobs != nil {
			w.sources.TemplateAge = w.templateAge
		}
		w.metrics = api.NewMetrics(w.sources)
	})
	return w.metrics
}

// jobSource is what the API needs from the template manager: the newest
// job, or nil before the first template.
type jobSource interface {
	Current() *jobInfo
}

// jobInfo is the part of a job the API reports.
type jobInfo struct {
	Height     int64
	Difficulty float64
	Received   time.Time
}

func (w *wiring) templateAge() time.Duration {
	if w.jobs == nil {
		return 0
	}
	j := w.jobs.Current()
	if j == nil {
		return 0
	}
	return time.Since(j.Received)
}

func (w *wiring) network() (api.Network, bool) {
	if w.jobs == nil {
		return api.Network{}, false
	}
	j := w.jobs.Current()
	if j == nil {
		return api.Network{}, false
	}
	return api.Network{Height: j.Height, Difficulty: j.Difficulty}, true
}

func (w *wiring) api(ctx context.Context) ([]component, error) {
	cfg := w.d.cfg
	if !cfg.Has(RoleAPI) {
		return nil, nil
	}
	params := cfg.ChainParams()
	checks := append([]api.Check{{Name: "redis", Run: w.store.Ping}}, w.checks...)
	if w.jobs != nil {
		maxAge := cfg.API.TemplateMaxAge
		checks = append(checks, api.Check{Name: "template", Run: func(ctx context.Context) error {
			j := w.jobs.Current()
			if j == nil {
				return fmt.Errorf("no block template yet")
			}
			if age := time.Since(j.Received); age > maxAge {
				return fmt.Errorf("template is %v old (limit %v)", age.Round(time.Second), maxAge)
			}
			return nil
		}})
	}
	acfg := api.Config{
		Listen:            cfg.API.Listen,
		AdminToken:        w.d.secrets.AdminToken,
		FeePercent:        cfg.Pool.FeePercent,
		PPLNSWindow:       cfg.Pool.PPLNSWindow,
		Network:           w.network,
		HistoryInterval:   cfg.API.HistoryInterval,
		CanonicalAddress:  func(s string) (string, error) { return btcaddr.Canonical(s, params) },
		RateLimit:         cfg.API.RateLimit,
		RateBurst:         cfg.API.RateBurst,
		TrustForwardedFor: cfg.API.TrustForwardedFor,
		Checks:            checks,
		Metrics:           w.metricsFor(),
		Banner:            w.banner,
		Logger:            w.d.log.Named("api"),
	}
	w.apiReaders(&acfg)
	w.apiHandlers(&acfg)
	srv, err := api.New(acfg)
	if err != nil {
		return nil, err
	}
	return []component{{name: "api", run: srv.Run}}, nil
}
