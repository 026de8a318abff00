package economics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
)

// newRand is the tests' deterministic generator.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15)) }

// fakeTemplates serves one template.
type fakeTemplates struct{ t TemplateInfo }

func (f fakeTemplates) CurrentTemplate() (TemplateInfo, bool) { return f.t, f.t.Bits != 0 }

// simWorker is a simulated miner: Poisson shares at a true hashrate.
type simWorker struct {
	name, address, ua string
	hashrate          float64 // H/s
	difficulty        float64
	buckets           []Bucket
}

// simStats simulates the share ledger's per-minute buckets for a set of
// workers, advancing minute by minute as the test clock moves.
type simStats struct {
	rng     *rand.Rand
	workers []*simWorker
	minute  int64 // last simulated unix minute
}

// advance simulates every minute up to now.
func (s *simStats) advance(now time.Time) {
	end := now.Unix()/60 - 1 // complete minutes only
	if s.minute == 0 {
		s.minute = end - 24*60
	}
	for s.minute < end {
		s.minute++
		for _, w := range s.workers {
			rate := w.hashrate / (w.difficulty * HashesPerDifficulty)
			var n int64
			for t := s.rng.ExpFloat64() / rate; t < 60; t += s.rng.ExpFloat64() / rate {
				n++
			}
			b := Bucket{Minute: s.minute, SumD: float64(n) * w.difficulty, SumD2: float64(n) * w.difficulty * w.difficulty, N: n, Connected: time.Minute}
			if n > 0 {
				b.MaxD = w.difficulty
			}
			w.buckets = append(w.buckets, b)
			if len(w.buckets) > 24*60 {
				w.buckets = w.buckets[1:]
			}
		}
	}
}

func (s *simStats) WorkerStats(_ context.Context, now time.Time) ([]WorkerStats, error) {
	s.advance(now)
	out := make([]WorkerStats, len(s.workers))
	for i, w := range s.workers {
		out[i] = WorkerStats{Worker: w.name, Address: w.address, UserAgent: w.ua, Difficulty: w.difficulty}
		for k, win := range windows {
			out[i].Windows[k] = SumBuckets(w.buckets, now, win)
		}
	}
	return out, nil
}

// priceServer is a real local HTTP price feed whose value the test sets.
type priceServer struct {
	*httptest.Server
	mu    sync.Mutex
	value float64
	down  bool
}

func newPriceServer(t *testing.T) *priceServer {
	t.Helper()
	p := &priceServer{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		v, down := p.value, p.down
		p.mu.Unlock()
		if down {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"data":{"price":"%v","unit":"kWh"}}`, v)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *priceServer) set(v float64, down bool) {
	p.mu.Lock()
	p.value, p.down = v, down
	p.mu.Unlock()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newTestServer starts a real local HTTP server and returns its URL.
func newTestServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

var (
	mainNet = &chaincfg.MainNetParams
	regTest = &chaincfg.RegressionNetParams
)
