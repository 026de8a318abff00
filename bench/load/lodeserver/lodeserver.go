// Package lodeserver runs a Lode Stratum server on a recorded block
// template with a realistic network target, for load benchmarks: the
// in-process target of bench's go test benchmarks and of "lode-bench
// serve", where a load client in another process measures it.
package lodeserver

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"go.uber.org/zap"

	"github.com/lode-pool/lode/bench/load"
	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum"
)

// DefaultTemplate is the recorded template LodeServer mines on, relative to
// the repository root: a testnet3 block whose network target (bits
// 192495f8) is far above any benchmark share difficulty, so no share is a
// block and no chain is touched.
const DefaultTemplate = "testdata/gbt/testnet3-2442185-public-pool.json"

// CountingRecorder is a stratum.Recorder that only counts shares: the
// share path alone, without the memory growth of keeping every share.
type CountingRecorder struct {
	n atomic.Int64
}

// RecordAsync counts s and answers at once.
func (c *CountingRecorder) RecordAsync(s *shares.Share, done shares.RecordDone, token uint64) error {
	c.n.Add(1)
	done.ShareDone(token, nil)
	return nil
}

// Count returns the number of recorded shares.
func (c *CountingRecorder) Count() int64 { return c.n.Load() }

// LodeConfig configures a LodeServer.
type LodeConfig struct {
	// Address to listen on (default 127.0.0.1:0).
	Address string
	// Template is a getblocktemplate result file (default DefaultTemplate,
	// resolved against the working directory).
	Template string
	// Difficulty is every connection's fixed share difficulty (default
	// 1e-8: about 43 hashes per share); vardiff is off.
	Difficulty float64
	// Recorder makes shares durable (default a CountingRecorder).
	Recorder stratum.Recorder
	Logger   *zap.Logger
	// Tune, when set, adjusts the server config before it starts.
	Tune func(*stratum.Config)
}

// LodeServer is a Lode Stratum server on a recorded template, for
// benchmarks.
type LodeServer struct {
	Server   *stratum.Server
	Addr     string
	Counting *CountingRecorder // nil when LodeConfig.Recorder was given

	builder *blocktemplate.Builder
	mu      sync.Mutex
	tmpl    *blocktemplate.Template
	cur     *blocktemplate.Job

	cancel context.CancelFunc
	done   chan error
}

// Current implements stratum.JobSource.
func (s *LodeServer) Current() *blocktemplate.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// StartLode starts a LodeServer; Stop ends it.
func StartLode(cfg LodeConfig) (*LodeServer, error) {
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:0"
	}
	if cfg.Template == "" {
		cfg.Template = DefaultTemplate
	}
	if cfg.Difficulty == 0 {
		cfg.Difficulty = 1e-8
	}
	raw, err := os.ReadFile(cfg.Template)
	if err != nil {
		return nil, fmt.Errorf("read template: %w", err)
	}
	tmpl, err := blocktemplate.ParseTemplate(raw)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", cfg.Template, err)
	}
	b, err := blocktemplate.NewBuilder(blocktemplate.Config{Network: &chaincfg.TestNet3Params,
		PayoutAddress: load.TestnetAddress(0xee), PoolTag: "/lode-bench/"})
	if err != nil {
		return nil, fmt.Errorf("coinbase builder: %w", err)
	}
	s := &LodeServer{builder: b, tmpl: tmpl, done: make(chan error, 1)}
	if s.cur, err = b.Job(tmpl, true); err != nil {
		return nil, fmt.Errorf("build job: %w", err)
	}
	rec := cfg.Recorder
	if rec == nil {
		s.Counting = &CountingRecorder{}
		rec = s.Counting
	}
	val, err := shares.New(shares.Config{})
	if err != nil {
		return nil, fmt.Errorf("share validator: %w", err)
	}
	scfg := stratum.Config{
		Ports: []stratum.Port{{Address: cfg.Address, StartDifficulty: cfg.Difficulty,
			MinDifficulty: cfg.Difficulty, MaxDifficulty: cfg.Difficulty}},
		Network:    &chaincfg.TestNet3Params,
		InstanceID: []byte{0x1b},
		Jobs:       s,
		Validator:  val,
		Recorder:   rec,
		Logger:     cfg.Logger,
		Vardiff:    stratum.Vardiff{Disabled: true},
		Ban:        stratum.Ban{Disabled: true},
		// Benchmarks hold idle connections for minutes.
		IdleTimeout: time.Hour,
	}
	if cfg.Tune != nil {
		cfg.Tune(&scfg)
	}
	srv, err := stratum.New(scfg)
	if err != nil {
		return nil, fmt.Errorf("stratum server: %w", err)
	}
	if err := srv.Listen(); err != nil {
		return nil, err
	}
	s.Server = srv
	s.Addr = srv.Addrs()[0].String()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- srv.Run(ctx) }()
	return s, nil
}

// NewBlock builds a clean job on a new prevhash and publishes it; it
// returns the time of the block event (just before Publish). mark, when
// not nil, is called with that time before Publish, so a load client can
// attribute the receipts to the event (load.Runner.MarkBlock).
func (s *LodeServer) NewBlock(mark func(time.Time)) (time.Time, error) {
	s.mu.Lock()
	t := *s.tmpl
	t.PrevHash[0]++
	if t.PrevHash[0] == 0 {
		t.PrevHash[1]++
	}
	t.Height++
	job, err := s.builder.Job(&t, true)
	if err != nil {
		s.mu.Unlock()
		return time.Time{}, fmt.Errorf("build job: %w", err)
	}
	at := time.Now()
	job.TipSeenAt = at
	s.tmpl, s.cur = &t, job
	s.mu.Unlock()
	if mark != nil {
		mark(at)
	}
	s.Server.Publish(job)
	return at, nil
}

// NotifyLine returns a mining.notify line for the current job's content
// with a fresh prevhash derived from seq: what FloorServer broadcasts, so
// the floor writes the same number of bytes as the pool.
func (s *LodeServer) NotifyLine(seq int) ([]byte, error) {
	return load.NotifyLineFor(s.Current(), seq)
}

// Stop shuts the server down (bounded by stratum.DefaultShutdownTimeout).
func (s *LodeServer) Stop() error {
	s.cancel()
	return <-s.done
}
