package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/lease"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
	"github.com/lode-pool/lode/stratum"
)

// apiReaders sets the API's readers from the Redis store.
func (w *wiring) apiReaders(c *api.Config) {
	r := newStoreReader(w.store)
	c.Pool, c.Blocks, c.Miners, c.Payments, c.Workers, c.Thresholds = r, r, r, r, r, r
	// The dashboard's views (issue 15): hashrate series, immature balance
	// at the unlocker's fee, the default threshold, explorer links.
	r.feeBasisPoints = w.feeBasisPoints()
	c.Series, c.TopMiners = r, r
	c.PayoutThreshold = w.d.cfg.Payouts.Threshold
	c.WorkerOfflineAfter = w.d.cfg.API.WorkerOfflineAfter
	c.ExplorerURL = w.d.cfg.ExplorerURL()
}

// node returns the process's node client, made on first use and shared by
// the roles (each RPC purpose has its own connection lane inside).
func (w *wiring) node() (*bitcoind.Client, error) {
	if w.nodeClient != nil {
		return w.nodeClient, nil
	}
	cfg := w.d.cfg.Node
	scheme := "http"
	if cfg.TLS {
		scheme = "https"
	}
	bc := bitcoind.Config{URL: scheme + "://" + cfg.RPCAddress, Timeout: cfg.Timeout}
	if cfg.RPCCookieFile != "" {
		// Left to the client so it re-reads the cookie when Core restarts.
		bc.CookieFile = cfg.RPCCookieFile
	} else {
		bc.User, bc.Password = w.d.secrets.NodeUser, w.d.secrets.NodePassword
	}
	c, err := bitcoind.New(bc, w.d.log.Named("node"))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	w.nodeClient = c
	w.checks = append(w.checks, api.Check{Name: "node", Run: func(ctx context.Context) error {
		_, err := c.GetBlockCount(ctx)
		return err
	}})
	return c, nil
}

// payoutScript is the output script of pool.payout_address.
func (w *wiring) payoutScript() ([]byte, error) {
	cfg := w.d.cfg
	addr, err := btcutil.DecodeAddress(cfg.Pool.PayoutAddress, cfg.ChainParams())
	if err != nil {
		return nil, fmt.Errorf("pool.payout_address: %w", err)
	}
	return txscript.PayToAddrScript(addr)
}

// feeBasisPoints converts pool.fee_percent to 1/100 percent.
func (w *wiring) feeBasisPoints() int64 { return int64(math.Round(w.d.cfg.Pool.FeePercent * 100)) }

// stratum builds the miners' side: node client, template manager, share
// validator, block submitter, share ledger and the Stratum server, plus the
// job fan-out between the manager and the server.
func (w *wiring) stratum(ctx context.Context) ([]component, error) {
	cfg := w.d.cfg
	if !cfg.Has(RoleStratum) {
		return nil, nil
	}
	log := w.d.log
	w.migrateWindow(ctx, log)
	node, err := w.node()
	if err != nil {
		return nil, err
	}
	mask, _ := cfg.VersionMask() // validated with the config
	builder, err := blocktemplate.NewBuilder(blocktemplate.Config{
		Network: cfg.ChainParams(), PayoutAddress: cfg.Pool.PayoutAddress, PoolTag: cfg.Pool.Tag,
		Extranonce2Size: cfg.Stratum.Extranonce2Size, VersionMask: mask,
	})
	if err != nil {
		return nil, fmt.Errorf("coinbase builder: %w", err)
	}
	mgr, err := blocktemplate.NewManager(blocktemplate.ManagerConfig{
		Source: node, Builder: builder, PollInterval: cfg.Node.PollInterval,
		RefreshInterval: cfg.Node.RefreshInterval, LongPoll: true, ZMQAddress: cfg.Node.ZMQHashBlock,
		Commitments: w.store, // the PPLNS window roots the next coinbase commits (docs/verify.md)
		Logger:      log.Named("templates"),
	})
	if err != nil {
		return nil, fmt.Errorf("template manager: %w", err)
	}
	validator, err := shares.New(shares.Config{})
	if err != nil {
		return nil, fmt.Errorf("share validator: %w", err)
	}
	submitter, err := blocks.NewSubmitter(blocks.SubmitterConfig{
		Nodes:       []blocks.NamedNode{{Name: "node", Node: node}},
		JournalPath: filepath.Join(cfg.Ledger.SpoolDir, "blocks.journal"),
		Logger:      log.Named("blocks"),
	})
	if err != nil {
		return nil, err
	}
	// The file's ledger section is the ledger's Config; the window is pool's.
	lc := cfg.Ledger
	lc.WindowFactor, lc.MinWindow, lc.Logger = cfg.Pool.PPLNSWindow, cfg.Pool.PPLNSMinWindow, log.Named("ledger")
	rec, err := ledger.New(lc, &timedStore{Store: w.store, metrics: w.metricsFor})
	if err != nil {
		return nil, fmt.Errorf("share ledger: %w", err)
	}
	script, err := w.payoutScript()
	if err != nil {
		return nil, err
	}
	blockRec, err := payouts.NewRecorder(payouts.RecorderConfig{
		Ledger: w.store, WindowFactor: cfg.Pool.PPLNSWindow, MinWindow: cfg.Pool.PPLNSMinWindow, Logger: log.Named("blocks"),
		ArchiveBlocks: cfg.Payouts.WindowArchiveBlocks, ArchiveFor: time.Duration(cfg.Payouts.WindowArchiveDays) * 24 * time.Hour,
	})
	if err != nil {
		return nil, err
	}
	found, err := blocks.New(blocks.Config{
		Submitter: submitter, Recorder: blockRec, PayoutScript: script,
		SpoolBytes: func() int64 { return rec.Stats().SpoolBytes },
		Submitted:  func(confirmed bool) { w.metricsFor().BlockCandidate(confirmed) },
		Logger:     log.Named("blocks"),
	})
	if err != nil {
		return nil, err
	}
	srvCfg := stratumConfig(cfg, mask)
	srvCfg.Jobs = mgr
	srvCfg.Validator = validator
	srvCfg.Blocks = found
	srvCfg.BlockFound = mgr
	srvCfg.Recorder = &shareRecorder{rec: rec, found: found, metrics: w.metricsFor}
	srvCfg.Observer = &rejectObserver{rec: rec, metrics: w.metricsFor}
	srvCfg.Presence = storePresence{w.store} // connected time and user agents (economics)
	srvCfg.Logger = log.Named("stratum")
	srv, err := stratum.New(srvCfg)
	if err != nil {
		return nil, err
	}
	// Bind now so a taken port fails the start, not a minute later.
	if err := srv.Listen(); err != nil {
		return nil, fmt.Errorf("stratum: %w", err)
	}
	for _, a := range srv.Addrs() {
		log.Info("stratum listening", zap.String("addr", a.String()))
	}

	w.jobs = managerJobs{mgr}
	w.sources.Stratum = func() api.StratumSnapshot { return stratumSnapshot(srv.Stats()) }
	w.sources.SpoolBytes = func() int64 { return rec.Stats().SpoolBytes }
	w.banner = srv
	// Bans reach the other frontends through Redis (docs/redis.md).
	srv.UseBanStore(w.store, 0)
	// SIGHUP: difficulty bounds, vardiff, bans, timeouts and limits.
	w.d.reloaders = append(w.d.reloaders, reloader{name: "stratum", reload: func(c Config) error {
		m, _ := c.VersionMask()
		return srv.Reload(stratumConfig(c, m))
	}})

	fanout := func(ctx context.Context) error {
		for job := range mgr.Subscribe(ctx) {
			if job.NetworkTarget != nil {
				rec.SetNetworkDifficulty(blocktemplate.TargetToDifficulty(job.NetworkTarget))
			}
			srv.Publish(job)
		}
		return nil
	}
	return []component{
		{name: "ledger", run: rec.Run, late: true},
		{name: "templates", run: mgr.Run},
		{name: "fanout", run: fanout},
		{name: "stratum", run: srv.Run},
		{name: "block-journal", run: found.Run},
	}, nil
}

var _ api.Banner = (*stratum.Server)(nil)

// migrateWindow turns the PPLNS window list of versions before slices into
// the window's oldest slices, once, before this process applies a batch or
// records a block (docs/redis.md, "Upgrade notes"). A failure does not stop
// the pool: it is logged, and the next start tries again (the migration is
// idempotent and resumes where it stopped).
func (w *wiring) migrateWindow(ctx context.Context, log *zap.Logger) {
	res, err := w.store.MigrateWindow(ctx)
	switch {
	case err != nil:
		log.Error("PPLNS window of the earlier version not migrated; retried at the next start", zap.Error(err))
	case res.Done && !res.Already:
		log.Info("PPLNS window of the earlier version migrated", zap.Int64("entries", res.Entries),
			zap.Int64("slices", res.Slices), zap.String("units", res.Units))
	}
}

// stratumConfig is the file's stratum section (package stratum's own
// Config) with what other sections give it: the network, pool.instance_id
// and the version mask (also the coinbase builder's). The caller adds the
// wired components.
func stratumConfig(cfg Config, mask uint32) stratum.Config {
	out := cfg.Stratum
	out.Network = cfg.ChainParams()
	out.InstanceID = []byte{byte(cfg.Pool.InstanceID)}
	out.VersionMask, out.VersionMaskHex = mask, ""
	return out
}

// unlocker follows found blocks to maturity and credits them. Several
// unlockers could run at once safely (each transition is checked inside one
// atomic store call); the lease still keeps it to one process, so the node
// is asked once and the logs tell one story.
func (w *wiring) unlocker(ctx context.Context) ([]component, error) {
	cfg := w.d.cfg
	if !cfg.Has(RoleUnlocker) {
		return nil, nil
	}
	node, err := w.node()
	if err != nil {
		return nil, err
	}
	script, err := w.payoutScript()
	if err != nil {
		return nil, err
	}
	uc := cfg.Unlocker // the file's unlocker section, with what the daemon wires
	uc.Ledger, uc.Chain, uc.PayoutScript, uc.FeeBasisPoints = w.store, node, script, w.feeBasisPoints()
	uc.Logger = w.d.log.Named("unlocker")
	u, err := payouts.NewUnlocker(uc)
	if err != nil {
		return nil, fmt.Errorf("unlocker: %w", err)
	}
	run, err := w.leased(RoleUnlocker, u.Run)
	if err != nil {
		return nil, err
	}
	return []component{{name: "unlocker", run: run}}, nil
}

// payouts pays balances on chain. Two processors never pay the same debit
// (CommitPayout checks and debits balances atomically), but they could
// contend for the same UTXOs, so the role runs under a lease: one process at
// a time pays.
func (w *wiring) payouts(ctx context.Context) ([]component, error) {
	cfg := w.d.cfg
	if !cfg.Has(RolePayouts) {
		return nil, nil
	}
	node, err := w.node()
	if err != nil {
		return nil, err
	}
	// The same settings lodectl payouts uses (config.PaymentConfig).
	pc, err := cfg.PaymentConfig(false, getenv, readFile)
	if err != nil {
		return nil, err
	}
	pc.Logger = w.d.log.Named("payouts")
	if dir := cfg.Payouts.PSBTDir; dir != "" && pc.Mode == payment.ModeCold {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("payouts.psbt_dir: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("payouts.psbt_dir %s: not a directory", dir)
		}
		pc.AfterRun = psbtWriter(dir, pc.Logger)
	}
	p, err := payment.New(pc, w.store, node)
	if err != nil {
		return nil, fmt.Errorf("payouts: %w", err)
	}
	// The halt alert (docs/payouts.md, "When a broadcast fails"): the
	// metrics come from this process's runs, the readiness check from the
	// store, so it holds whichever process has the lease.
	w.sources.Payouts = func() api.PayoutSnapshot {
		st := p.Status()
		return api.PayoutSnapshot{Halted: st.Halted, AwaitingBroadcast: st.AwaitingBroadcast,
			BroadcastRefused: st.BroadcastRefused, BroadcastFailed: st.BroadcastFailed}
	}
	// Advisory where this process also serves miners: halted payouts must
	// alert, not make a load balancer take the miners away.
	w.checks = append(w.checks, api.Check{Name: "payouts", Run: p.CheckBroadcasts, Advisory: w.d.cfg.Has(RoleStratum)})
	run, err := w.leased(RolePayouts, p.Run)
	if err != nil {
		return nil, err
	}
	return []component{{name: "payouts", run: run}}, nil
}

// leased wraps a role's Run so it runs only while this process holds the
// role's Redis lease (key <prefix>:lease:<role>); without the lease the
// component stands by and retries.
func (w *wiring) leased(role string, run func(context.Context) error) (func(context.Context) error, error) {
	l, err := w.store.Lease(role, w.d.cfg.Redis.LeaseTTL)
	if err != nil {
		return nil, err
	}
	cfg := lease.Config{Name: role, Logger: w.d.log.Named("lease")}
	return func(ctx context.Context) error { return lease.Run(ctx, l, cfg, run) }, nil
}

// psbtWriter returns the payouts processor's AfterRun in cold mode: each new
// unsigned payout's PSBT is written to dir for the offline signer
// (docs/payouts.md, "Cold"). A file that cannot be written is logged; the
// PSBT stays in the payout record, from which lodectl exports it.
func psbtWriter(dir string, log *zap.Logger) func(*payment.Result, error) {
	return func(res *payment.Result, _ error) {
		if res == nil {
			return
		}
		paths, err := payment.WritePSBTFiles(dir, res.Payouts)
		for _, path := range paths {
			log.Info("payout psbt written for the offline signer", zap.String("path", path))
		}
		if err != nil {
			log.Error("payout psbt not written: export it with lodectl payouts show <id> -psbt-out", zap.Error(err))
		}
	}
}
