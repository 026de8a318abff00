package redisstore_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/economics"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
	"github.com/lode-pool/lode/stratum"
)

// The statistics keep each worker's connected seconds in its minute and
// 10-minute buckets beside its shares: a worker's windows divide its work by
// the time it was connected (a bucket with shares but no connected time
// recorded counts whole), a worker connected without shares is listed with
// an upper bound, its user agent is read back, and buckets written before
// the packing (Σd alone in "w:", "Σd²|n|max d" in "e:") still read.
func TestEconomicsStatsConnectedTime(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	slotStart := (time.Now().Unix()/600 + 1) * 600
	q := time.Unix(slotStart+300, 0) // 5 minutes into a slot
	at := func(back time.Duration) time.Time { return q.Add(-back) }
	var seq uint64
	apply := func(es ...ledger.Entry) {
		for i := range es {
			seq++
			es[i].Seq = seq
		}
		seq++
		if err := s.ApplyBatch(ctx, &ledger.Batch{Instance: "c", Seq: seq, Shares: es}, "0"); err != nil {
			t.Fatal(err)
		}
	}
	share := func(worker string, d float64, when time.Time) ledger.Entry {
		return ledger.Entry{Units: "1", Share: shares.Share{Worker: worker, Address: "bc1qc", Difficulty: d, HashDifficulty: d, Time: when}}
	}
	// rig joined 150 s before the end of the last complete minute and
	// sent two shares; idle was connected 40 s without a share; old has
	// shares in two minutes and no connected time recorded.
	apply(share("bc1qc.rig", 4, at(100*time.Second)), share("bc1qc.rig", 2, at(90*time.Second)),
		share("bc1qc.old", 8, at(3*time.Minute+30*time.Second)), share("bc1qc.old", 8, at(2*time.Minute+30*time.Second)))
	end := q // q is on a minute: the end of the last complete minute
	if err := s.RecordPresence(ctx, []redisstore.WorkerPresence{
		{Worker: "bc1qc.rig", Address: "bc1qc", UserAgent: "bitaxe/BM1370/v2.4.0", Difficulty: 999, Spans: [][2]time.Time{{end.Add(-150 * time.Second), end}}},
		{Worker: "bc1qc.idle", Address: "bc1qc", UserAgent: "cgminer/4.11.1", Difficulty: 512, Spans: [][2]time.Time{{end.Add(-40 * time.Second), end}}},
	}); err != nil {
		t.Fatal(err)
	}
	// A share after the connected time: the field keeps both.
	apply(share("bc1qc.rig", 2, at(80*time.Second)))
	// Written before the packing: Σd in "w:", the rest in "e:". The
	// share puts the field in its shard's minute hash; it is rewritten as
	// the old format.
	apply(share("bc1qc.legacy", 1, at(2*time.Minute)))
	keys, err := rdb.Keys(ctx, "t:*:hr:"+strconv.FormatInt(at(2*time.Minute).Unix()/60, 10)).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if rdb.HExists(ctx, k, "w:bc1qc.legacy").Val() {
			rdb.HSet(ctx, k, "w:bc1qc.legacy", "12", "e:bc1qc.legacy", "80|2|8")
		}
	}

	got, err := s.EconomicsStats().WorkerStats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]economics.WorkerStats{}
	for _, w := range got {
		by[w.Worker] = w
	}
	tests := []struct {
		worker string
		agent  string
		diff   float64 // its latest share's; the frontend's only without one
		w5m    economics.WindowSums
	}{
		{"bc1qc.rig", "bitaxe/BM1370/v2.4.0", 2, economics.WindowSums{SumD: 8, SumD2: 24, MaxD: 4, N: 3, Connected: 150 * time.Second}},
		{"bc1qc.idle", "cgminer/4.11.1", 512, economics.WindowSums{Connected: 40 * time.Second}},
		// no connected time at all: from its first share's minute on
		{"bc1qc.old", "", 8, economics.WindowSums{SumD: 16, SumD2: 128, MaxD: 8, N: 2, Connected: 4 * time.Minute}},
		{"bc1qc.legacy", "", 1, economics.WindowSums{SumD: 12, SumD2: 80, MaxD: 8, N: 2, Connected: 2 * time.Minute}},
	}
	for _, tc := range tests {
		w, ok := by[tc.worker]
		if !ok {
			t.Errorf("%s not listed (%d workers)", tc.worker, len(got))
			continue
		}
		if w.UserAgent != tc.agent || w.Difficulty != tc.diff || w.Windows[0] != tc.w5m || w.Windows[1] != tc.w5m {
			t.Errorf("%s: agent %q, difficulty %v, 5 min %+v, 1 h %+v; want %q, %v, %+v in both",
				tc.worker, w.UserAgent, w.Difficulty, w.Windows[0], w.Windows[1], tc.agent, tc.diff, tc.w5m)
		}
	}
	idle := by["bc1qc.idle"]
	if e := economics.EstimateHashrate(idle.Windows[1], economics.Window1h, idle.Difficulty); e.Method != economics.MethodUpperBound ||
		e.High != economics.HashesPerDifficulty*512*-math.Log(0.025)/40 {
		t.Errorf("a connected worker without shares: %+v, want the upper bound of difficulty 512 over 40 s", e)
	}
}

// presenceJobs is a stratum.JobSource of one job built from a recorded
// testnet3 template, whose target is far above the test's share
// difficulty.
type presenceJobs struct{ job *blocktemplate.Job }

func (j presenceJobs) Current() *blocktemplate.Job { return j.job }

// storePresence is cmd/lode's adapter, as the daemon wires it.
type storePresence struct{ s *redisstore.Store }

func (p storePresence) RecordPresence(ctx context.Context, ps []stratum.Presence) error {
	out := make([]redisstore.WorkerPresence, len(ps))
	for i, x := range ps {
		spans := make([][2]time.Time, len(x.Spans))
		for j, sp := range x.Spans {
			spans[j] = [2]time.Time{sp.From, sp.To}
		}
		out[i] = redisstore.WorkerPresence{Worker: x.Worker, Address: x.Address, UserAgent: x.UserAgent,
			Difficulty: x.Difficulty, Spans: spans}
	}
	return p.s.RecordPresence(ctx, out)
}

// End to end: miners connect to a real stratum server over TCP with the
// user agents real firmware sends, mine real shares into the ledger and a
// real Redis, and leave after a few seconds. The economics engine, reading
// the statistics a minute later, divides each worker's work by the seconds
// it was connected: its 1 h and 24 h rates equal its 5 min rate (not 1/12
// or 1/288 of it, as dividing by the window would give), and it names the
// Bitaxe and the S21 from their user agents.
func TestConnectedTimeAndAgentEndToEnd(t *testing.T) {
	s, _ := shareStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rec, err := ledger.New(ledger.Config{Instance: "pe", Logger: zaptest.NewLogger(t)}, s)
	if err != nil {
		t.Fatal(err)
	}
	recDone := make(chan error, 1)
	go func() { recDone <- rec.Run(ctx) }()

	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "testdata/gbt/testnet3-2442185-public-pool.json"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		t.Fatal(err)
	}
	var pkh [20]byte
	pkh[0] = 0xee
	payout, _ := btcutil.NewAddressPubKeyHash(pkh[:], &chaincfg.TestNet3Params)
	b, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: &chaincfg.TestNet3Params, PayoutAddress: payout.EncodeAddress(), PoolTag: "/lode-test/"})
	if err != nil {
		t.Fatal(err)
	}
	job, err := b.Job(tmpl, true)
	if err != nil {
		t.Fatal(err)
	}
	val, err := shares.New(shares.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const diff = 1e-5
	srv, err := stratum.New(stratum.Config{
		Ports:   []stratum.Port{{Address: "127.0.0.1:0", StartDifficulty: diff, MinDifficulty: 1e-8, MaxDifficulty: 1}},
		Network: &chaincfg.TestNet3Params, Jobs: presenceJobs{job}, Validator: val, Recorder: rec,
		Vardiff: stratum.Vardiff{Disabled: true}, Presence: storePresence{s}, PresenceInterval: time.Second,
		Logger: zaptest.NewLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	srvDone := make(chan error, 1)
	go func() { srvDone <- srv.Run(ctx) }()

	const addr = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx"
	rigs := []struct{ name, agent, model, source string }{
		{addr + ".gamma", "bitaxe/BM1370/v2.4.0", "Bitaxe Gamma", economics.SourceUserAgent},
		{addr + ".s21", "Antminer S21/Thu Jan 11 15:32:56 CST 2024", "Antminer S21", economics.SourceUserAgent},
		// stock firmware naming only its miner software: the agent is kept,
		// the model comes from elsewhere (a rate this low: the default)
		{addr + ".bm", "bmminer/2.0.0", "unknown", economics.SourceDefault},
		{addr + ".cg", "cgminer/4.11.1", "unknown", economics.SourceDefault},
	}
	const perRig = 3
	connected := map[string]time.Duration{}
	var lastClose time.Time
	for _, r := range rigs {
		start := time.Now()
		m, err := miner.Dial(ctx, miner.Config{Address: srv.Addrs()[0].String(), Username: r.name, Password: "x", UserAgent: r.agent})
		if err != nil {
			t.Fatalf("dial %s: %v", r.name, err)
		}
		for i := range perRig {
			var sh *miner.Share
			for sh == nil { // nil: no job yet (or a new one), mine again
				if sh, err = m.Mine(ctx, uint64(i)); err != nil {
					t.Fatalf("%s: mine: %v", r.name, err)
				}
			}
			if rep, err := m.Submit(ctx, sh); err != nil || !rep.OK() {
				t.Fatalf("%s: submit: %+v %v", r.name, rep, err)
			}
		}
		time.Sleep(1500 * time.Millisecond) // connected a while after its last share
		m.Close()
		lastClose = time.Now()
		connected[r.name] = lastClose.Sub(start)
	}
	// The server reports every second: wait for the last session's end.
	testenv.WaitFor(t, 10*time.Second, "the last session's connected time", func() bool {
		ws, err := s.EconomicsStats().WorkerStats(ctx, lastClose.Add(2*time.Minute))
		if err != nil {
			return false
		}
		for _, w := range ws {
			if w.Worker == rigs[len(rigs)-1].name {
				return w.Windows[1].Connected >= connected[w.Worker]-time.Second
			}
		}
		return false
	})

	// Read as the engine does, once every minute with the sessions is
	// complete (5 min, 1 h) and once their 10-minute slot is (24 h).
	now1 := time.Unix((lastClose.Unix()/60+2)*60, 0)
	now24 := time.Unix((lastClose.Unix()/600+1)*600+60, 0)
	figures := func(now time.Time) map[string]economics.WorkerFigures {
		eng, err := economics.New(economics.Config{}, economics.Deps{Params: &chaincfg.TestNet3Params,
			Templates: economics.JobTemplates(func() *blocktemplate.Job { return job }), Stats: s.EconomicsStats(),
			Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := eng.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		out := map[string]economics.WorkerFigures{}
		for _, w := range eng.Snapshot().Workers {
			out[w.Worker] = w
		}
		return out
	}
	f1, f24 := figures(now1), figures(now24)
	for _, r := range rigs {
		w, ok := f1[r.name]
		if !ok {
			t.Errorf("%s: not in the figures", r.name)
			continue
		}
		if w.Device.Model != r.model || w.Device.Source != r.source {
			t.Errorf("%s (%q): device %+v, want %s from %s", r.name, r.agent, w.Device, r.model, r.source)
		}
		h5, h1, h24 := w.Hashrate[0], w.Hashrate[1], f24[r.name].Hashrate[2]
		// Whole seconds: the span starts at the second the session was
		// accepted and ends at the second it was closed.
		if c := time.Duration(h5.Connected * float64(time.Second)); c < connected[r.name]-time.Second || c > connected[r.name]+time.Second {
			t.Errorf("%s: connected %v s in the 5 min window, the session lasted %v", r.name, h5.Connected, connected[r.name])
		}
		for _, e := range []economics.HashrateEstimate{h1, h24} {
			if e.Shares != perRig || e.SumD != h5.SumD || e.Connected != h5.Connected || e.Hashrate != h5.Hashrate || e.Method != h5.Method {
				t.Errorf("%s: %v s window %+v, want the 5 min window's figures %+v", r.name, e.WindowS, e, h5)
			}
		}
	}
	cancel()
	if err := <-srvDone; err != nil {
		t.Error(err)
	}
	if err := <-recDone; err != nil {
		t.Error(err)
	}
}

// A report makes one script call per bucket hash it touches, whatever the
// number of workers in it: 500 workers connected for the same minute touch
// at most the 32 shards' minute and slot hashes. The same minute reported
// twice (two frontends) reads as the minute, not two.
func TestRecordPresenceOneCallPerBucket(t *testing.T) {
	s, rdb := shareStore(t)
	ctx := context.Background()
	from := time.Unix(time.Now().Unix()/60*60-120, 0)
	ps := make([]redisstore.WorkerPresence, 500)
	for i := range ps {
		ps[i] = redisstore.WorkerPresence{Worker: "bc1qp.w" + strconv.Itoa(i), Address: "bc1qp",
			Spans: [][2]time.Time{{from, from.Add(time.Minute)}}}
	}
	if err := s.RecordPresence(ctx, ps); err != nil { // loads the script
		t.Fatal(err)
	}
	rdb.ConfigResetStat(ctx)
	if err := s.RecordPresence(ctx, ps); err != nil {
		t.Fatal(err)
	}
	info := rdb.Info(ctx, "commandstats").Val()
	_, line, _ := strings.Cut(info, "cmdstat_evalsha:calls=")
	calls, _ := strconv.Atoi(line[:strings.IndexByte(line, ',')])
	if calls == 0 || calls > 64 {
		t.Errorf("%d script calls for 500 workers in one minute, want one per bucket hash (at most 64)", calls)
	}
	ws, err := s.EconomicsStats().WorkerStats(ctx, from.Add(2*time.Minute))
	// Reported twice, 120 s in a minute: capped at the minute's width.
	if err != nil || len(ws) != 500 || ws[0].Windows[0].Connected != time.Minute {
		t.Fatalf("%d workers, first %+v, %v: want 500, each connected 60 s", len(ws), ws[0].Windows[0], err)
	}
}
