package main

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/api"
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
	submitter, err := shares.NewBlockSubmitter(shares.SubmitterConfig{
		Nodes:       []shares.NamedNode{{Name: "node", Node: node}},
		JournalPath: filepath.Join(cfg.Ledger.SpoolDir, "blocks.journal"),
		Logger:      log.Named("blocks"),
	})
	if err != nil {
		return nil, err
	}
	rec, err := ledger.New(ledger.Config{
		MaxBatch: cfg.Ledger.BatchSize, MaxDelay: cfg.Ledger.BatchWait, StatsInterval: cfg.Ledger.StatsInterval,
		WindowFactor: cfg.Pool.PPLNSWindow, MinWindow: cfg.Pool.PPLNSMinWindow,
		SpoolPath: filepath.Join(cfg.Ledger.SpoolDir, "shares.spool"),
		Logger:    log.Named("ledger"),
	}, &timedStore{Store: w.store, metrics: w.metricsFor})
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
	found := newFoundBlocks(submitter, blockRec, script, w.metricsFor,
		func() int64 { return rec.Stats().SpoolBytes }, log.Named("blocks"))
	srvCfg := stratumConfig(cfg, mask)
	srvCfg.Jobs = mgr
	srvCfg.Validator = validator
	srvCfg.Blocks = found
	srvCfg.BlockFound = mgr
	srvCfg.Recorder = &shareRecorder{rec: rec, found: found, metrics: w.metricsFor}
	srvCfg.Observer = &rejectObserver{rec: rec, metrics: w.metricsFor}
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
		{name: "block-journal", run: found.run},
	}, nil
}

var _ api.Banner = (*stratum.Server)(nil)

// stratumConfig maps the file's stratum section to the server's Config
// (without the wired components).
func stratumConfig(cfg Config, mask uint32) stratum.Config {
	sc := cfg.Stratum
	out := stratum.Config{
		Network:             cfg.ChainParams(),
		InstanceID:          []byte{byte(cfg.Pool.InstanceID)},
		VersionMask:         mask,
		Extranonce2Size:     sc.Extranonce2Size,
		MaxLineLength:       sc.MaxLineBytes,
		AuthorizeTimeout:    sc.AuthorizeTimeout,
		IdleTimeout:         sc.IdleTimeout,
		MaxConnections:      sc.MaxConnections,
		MaxConnectionsPerIP: sc.MaxPerIP,
		Vardiff:             stratum.Vardiff{TargetInterval: sc.ShareInterval, RetargetTime: sc.RetargetInterval},
		Ban: stratum.Ban{Disabled: !sc.Ban.Enabled, Window: sc.Ban.Window, MinShares: sc.Ban.MinShares,
			RejectRatio: sc.Ban.RejectRatio, Duration: sc.Ban.Duration, IP: sc.Ban.BanIP},
	}
	for _, p := range sc.Ports {
		out.Ports = append(out.Ports, stratum.Port{Address: p.Listen, StartDifficulty: p.StartDifficulty,
			MinDifficulty: p.MinDifficulty, MaxDifficulty: p.MaxDifficulty, TLSCertFile: p.TLSCert, TLSKeyFile: p.TLSKey})
	}
	return out
}

// stratumSnapshot copies the server's counters for a scrape.
func stratumSnapshot(st *stratum.Stats) api.StratumSnapshot {
	s := api.StratumSnapshot{
		Connections: st.Connections.Load(), Closes: map[string]uint64{}, Panics: st.Panics.Load(),
		StaleBounds: stratum.StaleAgeBuckets,
	}
	for i := range st.StaleByAge {
		s.StaleCounts = append(s.StaleCounts, st.StaleByAge[i].Load())
	}
	for _, r := range stratum.CloseReasons() {
		if n := st.ClosedBy(r); n > 0 {
			s.Closes[r.String()] = n
		}
	}
	bounds, counts, sum, n := st.TipToNotify.Snapshot()
	s.Fanout = api.HistogramSnapshot{Bounds: bounds, Counts: counts, Sum: sum, Count: n}
	bounds, counts, sum, n = st.Submit.Snapshot()
	s.Submit = api.HistogramSnapshot{Bounds: bounds, Counts: counts, Sum: sum, Count: n}
	return s
}

// managerJobs adapts the template manager to the API's job source.
type managerJobs struct{ m *blocktemplate.Manager }

func (j managerJobs) Current() *jobInfo {
	job := j.m.Current()
	if job == nil {
		return nil
	}
	info := &jobInfo{Height: job.Height, Received: job.CreatedAt}
	if job.Template != nil {
		info.Received = job.Template.ReceivedAt
	}
	if job.NetworkTarget != nil {
		info.Difficulty = blocktemplate.TargetToDifficulty(job.NetworkTarget)
	}
	return info
}

// rejectReason names a Stratum error code for metrics and worker stats.
func rejectReason(code int) string {
	switch code {
	case 21:
		return ledger.ReasonStale
	case 22:
		return "duplicate"
	case 23:
		return "low_difficulty"
	case 24:
		return "unauthorized"
	case 25:
		return "not_subscribed"
	}
	return "other"
}

// rejectObserver counts rejected shares in the metrics and, for authorized
// workers, in the worker's ledger statistics.
type rejectObserver struct {
	rec     *ledger.Recorder
	metrics func() *api.Metrics
}

func (o *rejectObserver) ShareRejected(r stratum.Rejection) {
	reason := rejectReason(r.Code)
	o.metrics().ShareRejected(reason)
	if r.Address != "" {
		o.rec.RecordReject(r.Worker, r.Address, reason)
	}
}

// shareRecorder is the stratum server's Recorder: the ledger's group
// commit, timed, and the hand-off of a block-finding share to foundBlocks
// once it is durable (the PPLNS snapshot must include it).
type shareRecorder struct {
	rec     *ledger.Recorder
	found   *foundBlocks
	metrics func() *api.Metrics
}

// recordCall follows one share through the ledger; pooled, so the
// asynchronous path allocates nothing per share.
type recordCall struct {
	r      *shareRecorder
	done   shares.RecordDone
	token  uint64
	start  time.Time
	diff   float64
	block  bool
	height int64
	worker string
	seq    uint64 // the ledger's sequence of the share (ShareDoneSeq)
}

var recordCallPool = sync.Pool{New: func() any { return new(recordCall) }}

func (s *shareRecorder) RecordAsync(sh *shares.Share, done shares.RecordDone, token uint64) error {
	c := recordCallPool.Get().(*recordCall)
	*c = recordCall{r: s, done: done, token: token, start: time.Now(), diff: sh.Difficulty}
	if sh.Block {
		c.block, c.height, c.worker = true, sh.JobHeight, sh.Worker
	}
	if err := s.rec.RecordAsync(sh, c, 0); err != nil {
		*c = recordCall{}
		recordCallPool.Put(c)
		return err
	}
	return nil
}

// ShareDoneSeq implements ledger.SeqDone: the block-finding share's
// sequence goes to the snapshot, whose window ends at it.
func (c *recordCall) ShareDoneSeq(token, seq uint64, err error) {
	c.seq = seq
	c.ShareDone(token, err)
}

// ShareDone runs on the ledger's flusher: metrics, the found block's
// snapshot (also when recording failed: the node has the block, and its
// PPLNS snapshot must not be lost with the share), then the session.
func (c *recordCall) ShareDone(_ uint64, err error) {
	m := c.r.metrics()
	m.RecordLatency(time.Since(c.start))
	if err == nil {
		m.ShareAccepted(c.diff)
	}
	if c.block {
		seq := "" // not durable: the snapshot cannot end at it (late)
		if err == nil && c.seq != 0 {
			seq = c.r.rec.Instance() + ":" + strconv.FormatUint(c.seq, 10)
		}
		c.r.found.shareDone(c.height, c.worker, seq)
	}
	done, token := c.done, c.token
	*c = recordCall{}
	recordCallPool.Put(c)
	done.ShareDone(token, err)
}

// timedStore measures each group-commit batch the ledger writes.
type timedStore struct {
	ledger.Store
	metrics func() *api.Metrics
}

func (t *timedStore) ApplyBatch(ctx context.Context, b *ledger.Batch, windowLimit string) error {
	start := time.Now()
	err := t.Store.ApplyBatch(ctx, b, windowLimit)
	if err == nil && b.Kind != ledger.BatchStats { // a group commit, not the statistics of many
		t.metrics().LedgerBatch(time.Since(start), len(b.Shares))
	}
	return err
}

// foundBlocks submits block candidates and records the blocks the node
// took (the PPLNS snapshot, payouts.Recorder.BlockFound). The stratum
// server calls Submit on a goroutine of its own while the block-finding
// share is recorded; the snapshot is taken (recordFinder) once both the
// node has taken the block and the share is durable (shareDone), so the
// finder's own share is in the window. The block line of the journal names
// the finder (Candidate.Worker).
//
// A block worth a block reward must not go unrecorded because the store was
// down or the process died after the node took it: the block submitter's
// journal keeps every accepted block "unrecorded" (with its finder, noted
// before the share is recorded) until its snapshot is taken, and run
// retries the snapshot with backoff until it is, also after a restart. A
// snapshot taken late counts the PPLNS window as it is then, so it includes
// the shares recorded after the block was found (and the round they start
// counts them again); to keep the shares accepted during an outage in it, a
// late snapshot waits for the share spool to drain, up to spoolWait.
type foundBlocks struct {
	submitter *shares.BlockSubmitter
	recorder  *payouts.Recorder
	script    []byte
	metrics   func() *api.Metrics
	log       *zap.Logger
	// spoolBytes is the share ledger's spool size (nil: no spool).
	spoolBytes func() int64

	wake    chan struct{} // a record failed or a block was accepted: run looks at the journal
	started time.Time     // when run started

	mu      sync.Mutex
	pending map[int64]*shares.Candidate  // accepted candidates by height, waiting for their share
	durable map[int64]finding            // block-finding shares answered by the ledger, by height
	live    map[chainhash.Hash]time.Time // accepted blocks recordFinder handles, since when
	// seqs keeps the finding share's sequence of the blocks in failed, for
	// their retries (the journal does not record it).
	seqs map[chainhash.Hash]string
	// failed holds the blocks recordFinder could not record, for run to
	// retry even if their journal lines could not be written (disk full).
	failed map[chainhash.Hash]shares.AcceptedBlock
}

// Retry and wait bounds of foundBlocks.run.
const (
	recordRetryMin = 500 * time.Millisecond
	recordRetryMax = 10 * time.Second
	// liveGrace: how long run leaves an accepted block to recordFinder (whose
	// share, recorded through the ledger, names the finder).
	liveGrace = time.Minute
	// spoolWait bounds how long a late snapshot waits for the share spool
	// to drain.
	spoolWait = 2 * time.Minute
)

func newFoundBlocks(submitter *shares.BlockSubmitter, recorder *payouts.Recorder, script []byte,
	metrics func() *api.Metrics, spoolBytes func() int64, log *zap.Logger) *foundBlocks {
	return &foundBlocks{
		submitter: submitter, recorder: recorder, script: script, metrics: metrics, spoolBytes: spoolBytes,
		log: log, wake: make(chan struct{}, 1), started: time.Now(),
		pending: map[int64]*shares.Candidate{}, durable: map[int64]finding{}, live: map[chainhash.Hash]time.Time{},
		seqs:   map[chainhash.Hash]string{},
		failed: map[chainhash.Hash]shares.AcceptedBlock{},
	}
}

// Submit implements stratum.BlockSubmitter: the block submitter's journal
// and submission, counted, and remembered for the PPLNS snapshot when the
// node took the block.
func (f *foundBlocks) Submit(ctx context.Context, c shares.Candidate) (shares.BlockReport, error) {
	report, err := f.submitter.Submit(ctx, c)
	f.metrics().BlockCandidate(err == nil && report.Confirmed)
	if err == nil && report.Confirmed {
		f.mu.Lock()
		f.live[c.Hash] = time.Now()
		fd, shareDone := f.durable[c.Job.Height]
		if shareDone {
			delete(f.durable, c.Job.Height)
		} else {
			f.pending[c.Job.Height] = &c
		}
		f.mu.Unlock()
		if shareDone {
			go f.recordFinder(context.WithoutCancel(ctx), &c, fd.worker, fd.seq)
		}
	}
	// Confirmed: if the share never arrives, run records the block after
	// liveGrace. Not confirmed (node down, hung, or undecided): run
	// resubmits it from the journal until the chain settles it.
	f.poke()
	return report, err
}

// maxDurableFinders bounds the block-finding shares remembered while their
// block's submission is in progress (a block no node takes leaves one).
const maxDurableFinders = 64

// finding is a block-finding share the ledger answered: its worker and its
// ledger sequence ("instance:counter", "" when it was not made durable).
type finding struct{ worker, seq string }

// shareDone is told that the ledger answered a block-finding share (durable
// or not), with its sequence. If the node already took the block, its
// snapshot is taken now; otherwise when Submit learns it did.
func (f *foundBlocks) shareDone(height int64, worker, seq string) {
	f.mu.Lock()
	c := f.pending[height]
	if c != nil {
		delete(f.pending, height)
	} else {
		if len(f.durable) >= maxDurableFinders {
			for h := range f.durable {
				if h < height {
					delete(f.durable, h)
				}
			}
		}
		if len(f.durable) < maxDurableFinders {
			f.durable[height] = finding{worker: worker, seq: seq}
		}
	}
	f.mu.Unlock()
	if c != nil {
		// Off the ledger's flusher: with Redis down the snapshot waits on
		// dial retries, and a failed attempt is retried from the journal
		// by run.
		go f.recordFinder(context.Background(), c, worker, seq)
	}
}

func (f *foundBlocks) poke() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// noteFinder journals the worker of a block-finding share before the share
// is recorded, and returns the block's candidate (nil when the node did not
// take a block at that height).
func (f *foundBlocks) noteFinder(sh shares.Share) *shares.Candidate {
	f.mu.Lock()
	c := f.pending[sh.JobHeight]
	delete(f.pending, sh.JobHeight)
	f.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := f.submitter.NoteFinder(c.Hash, c.Job.Height, sh.Worker); err != nil {
		f.log.Error("found block: finder not journaled", zap.Stringer("hash", c.Hash), zap.Error(err))
	}
	return c
}

// recordFinder takes the PPLNS snapshot of the block c, found by worker. On
// failure the block stays unrecorded in the journal and run retries it.
func (f *foundBlocks) recordFinder(ctx context.Context, c *shares.Candidate, worker, seq string) {
	defer func() {
		f.mu.Lock()
		delete(f.live, c.Hash)
		f.mu.Unlock()
	}()
	block, err := c.Job.Block(c.Extranonce1, c.Extranonce2, c.Header)
	if err != nil {
		f.log.Error("rebuild found block", zap.Error(err))
		f.poke() // run records it from the journal
		return
	}
	if err := f.record(ctx, block, c.Job.Height, worker, time.Now(), seq); err != nil {
		f.mu.Lock()
		f.failed[c.Hash] = shares.AcceptedBlock{Hash: c.Hash, Height: c.Job.Height, Block: block, Finder: worker, Time: time.Now()}
		f.seqs[c.Hash] = seq
		f.mu.Unlock()
		f.poke()
	}
}

// record snapshots one accepted block and marks it recorded in the journal.
// foundAt is when the pool found it (the header's time can be off by the
// miner's clock and ntime rolling): the time the dashboard and lodectl show.
// seq is the finding share's ledger sequence: the PPLNS window ends at it
// ("" when unknown: the snapshot is late, docs/verify.md).
func (f *foundBlocks) record(ctx context.Context, block *wire.MsgBlock, height int64, finder string, foundAt time.Time, seq string) error {
	hash := block.BlockHash()
	fb, err := payouts.NewFoundBlock(block, height, finder, f.script)
	if err != nil {
		f.log.Error("found block record", zap.Stringer("hash", hash), zap.Error(err))
		return err
	}
	fb.FindingSeq = seq
	if !foundAt.IsZero() {
		fb.Time = foundAt
	}
	if _, err := f.recorder.BlockFound(ctx, fb); err != nil {
		f.log.Error("found block not recorded yet; will retry", zap.Stringer("hash", hash), zap.Int64("height", height), zap.Error(err))
		return err
	}
	// A failed mark only means the (idempotent) snapshot is taken again.
	if err := f.submitter.MarkRecorded(hash, height); err != nil {
		f.log.Error("found block recorded but not marked in the journal", zap.Stringer("hash", hash), zap.Error(err))
	}
	return nil
}

// run resubmits the blocks a previous run journaled but may not have
// delivered (Recover, retried until it gets through), then records every
// accepted block the journal holds unrecorded, retrying with backoff until
// ctx ends. BlockFound is idempotent on the block hash: a block recorded
// twice keeps its first record.
func (f *foundBlocks) run(ctx context.Context) error {
	delay := recordRetryMin
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	woke, recovered := false, false
	for {
		retry.Stop()
		if !recovered || f.submissionsPending() {
			// A block the nodes have not settled yet (the node was down or
			// hung when it was found, or a previous run died) is submitted
			// again until the chain has it or has moved past its height.
			// Not a gate for the records below: a journal Recover cannot
			// rewrite must not keep the blocks it lists unrecorded.
			if _, err := f.submitter.Recover(ctx); err == nil {
				recovered = !f.submissionsPending()
			} else if ctx.Err() == nil {
				recovered = false
				f.log.Error("block journal recovery; will retry", zap.Error(err))
			}
		}
		waiting, failed, recorded := f.recordUnrecorded(ctx)
		left := waiting + failed
		if !recovered {
			failed++
		}
		switch {
		case failed > 0: // the store (or the journal) fails: back off
			retry.Reset(delay)
			delay = min(2*delay, recordRetryMax)
		case waiting > 0: // only waiting for recordFinder or the spool: look again soon
			delay = recordRetryMin
			retry.Reset(delay)
		default:
			delay = recordRetryMin
		}
		if recorded > 0 || (woke && left == 0) {
			// Recorded blocks leave the journal, also those recordFinder
			// recorded (a block's hex is megabytes on mainnet).
			if err := f.submitter.Compact(); err != nil {
				f.log.Warn("block journal compaction", zap.Error(err))
			}
		}
		woke = false
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
			woke = true
		case <-retry.C:
		}
	}
}

// submissionsPending reports whether the journal holds blocks whose
// submission the chain has not settled (an unreadable journal counts).
func (f *foundBlocks) submissionsPending() bool {
	p, err := f.submitter.Pending()
	return err != nil || len(p) > 0
}

// recordUnrecorded records the journal's unrecorded blocks. It returns how
// many it left for later (recordFinder's or the spool's turn), how many it
// failed to record, and how many it recorded.
func (f *foundBlocks) recordUnrecorded(ctx context.Context) (waiting, failed, recorded int) {
	blocks, err := f.submitter.Unrecorded()
	if err != nil {
		f.log.Error("block journal", zap.Error(err))
		failed++ // the in-memory ones below are still tried
	}
	journaled := make(map[chainhash.Hash]bool, len(blocks))
	for _, b := range blocks {
		journaled[b.Hash] = true
	}
	f.mu.Lock()
	for h, b := range f.failed {
		if !journaled[h] {
			blocks = append(blocks, b) // its journal lines were not written
		}
	}
	f.mu.Unlock()
	for _, b := range blocks {
		if ctx.Err() != nil {
			return waiting, failed, recorded
		}
		f.mu.Lock()
		since, live := f.live[b.Hash]
		f.mu.Unlock()
		if live && time.Since(since) < liveGrace {
			waiting++ // recordFinder is on it; look again later
			continue
		}
		if f.spoolBytes != nil && f.spoolBytes() > 0 && time.Since(later(b.Time, f.started)) < spoolWait {
			waiting++ // shares accepted during the outage are still to be replayed into the window
			continue
		}
		f.mu.Lock()
		seq := f.seqs[b.Hash] // "" for a block only the journal knows: late
		f.mu.Unlock()
		if err := f.record(ctx, b.Block, b.Height, b.Finder, b.Time, seq); err != nil {
			if _, bad := payouts.NewFoundBlock(b.Block, b.Height, b.Finder, f.script); bad == nil {
				failed++ // the store, not the block: try again
			}
			continue
		}
		recorded++
		f.mu.Lock()
		delete(f.failed, b.Hash)
		delete(f.seqs, b.Hash)
		f.mu.Unlock()
		f.log.Info("found block recorded late", zap.Stringer("hash", b.Hash), zap.Int64("height", b.Height), zap.String("finder", b.Finder))
	}
	return waiting, failed, recorded
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
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
	u, err := payouts.NewUnlocker(payouts.UnlockerConfig{
		Ledger: w.store, Chain: node, PayoutScript: script, FeeBasisPoints: w.feeBasisPoints(),
		Maturity: int64(cfg.Unlocker.Maturity), Interval: cfg.Unlocker.Interval, Logger: w.d.log.Named("unlocker"),
	})
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
