package ledger_test

import (
	"context"
	"errors"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// doneLog records every ShareDone call.
type doneLog struct {
	mu    sync.Mutex
	calls map[uint64]int
	errs  map[uint64]error
	order []uint64
	ch    chan uint64
}

func newDoneLog(n int) *doneLog {
	return &doneLog{calls: map[uint64]int{}, errs: map[uint64]error{}, ch: make(chan uint64, n)}
}

func (d *doneLog) ShareDone(token uint64, err error) {
	d.mu.Lock()
	d.calls[token]++
	d.errs[token] = err
	d.order = append(d.order, token)
	d.mu.Unlock()
	d.ch <- token
}

// waitN waits for n completions; the bound only stops a broken test.
func (d *doneLog) waitN(t *testing.T, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-d.ch:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of %d completions arrived", i, n)
		}
	}
}

// batchStore reports the size of every batch the recorder writes and can
// hold a write until released: a write in flight, without timing.
type batchStore struct {
	ledger.Store
	sizes   chan int
	held    atomic.Bool
	release chan struct{}
}

func (b *batchStore) ApplyBatch(ctx context.Context, batch *ledger.Batch, limit string) error {
	b.sizes <- len(batch.Shares)
	if b.held.Load() {
		<-b.release
	}
	return b.Store.ApplyBatch(ctx, batch, limit)
}

// TestZeroBatchWait: a batch wait of 0 is valid (and the default); a write
// starts as soon as none is in flight, and the shares that arrive while it
// is in flight are written together as the next batch.
func TestZeroBatchWait(t *testing.T) {
	if _, err := ledger.New(ledger.Config{MaxDelay: -time.Millisecond}, &batchStore{}); err == nil {
		t.Fatal("a negative batch wait was accepted")
	}
	srv := testenv.StartRedis(t)
	store := &batchStore{Store: connect(t, srv.Addr), sizes: make(chan int, 100), release: make(chan struct{})}
	rec := newRecorder(t, ledger.Config{MaxDelay: 0}, store)
	if got := rec.BatchWait(); got != 0 {
		t.Fatalf("batch wait 0 became %v", got)
	}
	if d := newRecorder(t, ledger.Config{}, store).BatchWait(); d != 0 {
		t.Fatalf("default batch wait %v, want 0", d)
	}
	run(t, rec)
	log := newDoneLog(100)

	store.held.Store(true)
	sh := mkShare("A", "w", 1)
	if err := rec.RecordAsync(&sh, log, 0); err != nil {
		t.Fatal(err)
	}
	if n := <-store.sizes; n != 1 {
		t.Fatalf("first batch of %d shares, want the 1 share at once", n)
	}
	// The first write is held: these queue behind it.
	const more = 20
	for i := 1; i <= more; i++ {
		if err := rec.RecordAsync(&sh, log, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "shares queued", func() bool { return queued(rec) == more })
	store.held.Store(false)
	close(store.release)
	if n := <-store.sizes; n != more {
		t.Fatalf("second batch of %d shares, want the %d that arrived during the first write", n, more)
	}
	log.waitN(t, more+1)
	for tok := uint64(0); tok <= more; tok++ {
		if log.calls[tok] != 1 || log.errs[tok] != nil {
			t.Fatalf("token %d: %d calls, err %v", tok, log.calls[tok], log.errs[tok])
		}
	}
	// Completed last to first within the batch (so a connection's run of
	// shares is ready at its first one).
	if log.order[1] != more || log.order[more] != 1 {
		t.Fatalf("completion order %v, want the second batch last to first", log.order)
	}
}

// queued is how many shares wait in the recorder's queue.
func queued(rec *ledger.Recorder) int { return rec.Queued() }

// TestPositiveBatchWaitStillBatches: a configured wait holds a batch open
// until it is full (here the wait is an hour, so only MaxBatch ends it).
func TestPositiveBatchWaitStillBatches(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := &batchStore{Store: connect(t, srv.Addr), sizes: make(chan int, 100), release: make(chan struct{})}
	rec := newRecorder(t, ledger.Config{MaxDelay: time.Hour, MaxBatch: 8}, store)
	run(t, rec)
	log := newDoneLog(100)
	sh := mkShare("A", "w", 1)
	for i := range 16 {
		if err := rec.RecordAsync(&sh, log, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if n := <-store.sizes; n != 8 {
			t.Fatalf("batch of %d shares, want full batches of 8", n)
		}
	}
	log.waitN(t, 16)
}

// TestRecordAsyncDurableAndCounted: many async shares from many goroutines
// each complete once, nil, and are in Redis exactly once.
func TestRecordAsyncDurableAndCounted(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	rec := newRecorder(t, ledger.Config{}, store)
	stop := run(t, rec)
	const g, per = 8, 500
	log := newDoneLog(g * per)
	var wg sync.WaitGroup
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh := mkShare("A", "w", 0.5)
			for j := range per {
				if err := rec.RecordAsync(&sh, log, uint64(i*per+j)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	log.waitN(t, g*per)
	stop()
	for tok := range uint64(g * per) {
		if log.calls[tok] != 1 || log.errs[tok] != nil {
			t.Fatalf("token %d: %d calls, err %v", tok, log.calls[tok], log.errs[tok])
		}
	}
	got, _ := ledgerTotals(t, store)
	want := new(big.Int).Mul(units(t, 0.5), big.NewInt(g*per))
	if got["A"].Cmp(want) != 0 {
		t.Fatalf("ledger A = %v, want %v", got["A"], want)
	}
	var invalid shares.Share
	if err := rec.RecordAsync(&invalid, log, 0); !errors.Is(err, ledger.ErrInvalidShare) && !errors.Is(err, ledger.ErrClosed) {
		t.Fatalf("invalid share after stop: %v", err)
	}
}

// TestRecordAsyncRacingShutdown: shares handed over while the recorder shuts
// down are either refused (ErrClosed, no callback) or completed exactly once;
// none is left unanswered.
func TestRecordAsyncRacingShutdown(t *testing.T) {
	srv := testenv.StartRedis(t)
	store := connect(t, srv.Addr)
	rec := newRecorder(t, ledger.Config{MaxBatch: 4}, store)
	stop := run(t, rec)
	const g, per = 8, 2000
	log := newDoneLog(g * per)
	var queuedN atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			sh := mkShare("A", "w", 1)
			for j := range per {
				err := rec.RecordAsync(&sh, log, uint64(i*per+j))
				if errors.Is(err, ledger.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				queuedN.Add(1)
			}
		}()
	}
	close(start)
	waitFor(t, 10*time.Second, "some shares recorded", func() bool { return rec.Stats().Shares > 100 })
	stop()
	wg.Wait()
	n := int(queuedN.Load())
	log.waitN(t, n)
	if len(log.ch) != 0 {
		t.Fatalf("more completions than queued shares")
	}
	var ok int64
	for tok, c := range log.calls {
		if c != 1 {
			t.Fatalf("token %d completed %d times", tok, c)
		}
		if log.errs[tok] == nil {
			ok++
		}
	}
	got, _ := ledgerTotals(t, store)
	if want := new(big.Int).Mul(units(t, 1), big.NewInt(ok)); got["A"].Cmp(want) != 0 {
		t.Fatalf("ledger A = %v, want %v for %d acknowledged shares", got["A"], want, ok)
	}
	t.Logf("%d queued, %d acknowledged", n, ok)
}

// kindStore counts the shares of each kind of batch it applies.
type kindStore struct {
	ledger.Store
	mu    sync.Mutex
	kinds map[ledger.BatchKind]int
}

func (k *kindStore) ApplyBatch(ctx context.Context, b *ledger.Batch, limit string) error {
	k.mu.Lock()
	k.kinds[b.Kind] += len(b.Shares)
	k.mu.Unlock()
	return k.Store.ApplyBatch(ctx, b, limit)
}

func (k *kindStore) count(kind ledger.BatchKind) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kinds[kind]
}

// TestStatisticsBatchedPerInterval: shares are acknowledged once their
// accounting is written; with a StatsInterval their statistics follow as one
// statistics batch per interval (here an hour, so only the shutdown flush
// writes it); by default (0) they go with every group commit.
func TestStatisticsBatchedPerInterval(t *testing.T) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"interval", time.Hour}, {"inline (default)", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			base := connect(t, srv.Addr)
			if err := base.Client().FlushAll(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			store := &kindStore{Store: base, kinds: map[ledger.BatchKind]int{}}
			rec := newRecorder(t, ledger.Config{StatsInterval: tc.interval}, store)
			stop := run(t, rec)
			const n = 50
			log := newDoneLog(n)
			sh := mkShare("A", "w", 1)
			for i := range n {
				if err := rec.RecordAsync(&sh, log, uint64(i)); err != nil {
					t.Fatal(err)
				}
			}
			log.waitN(t, n)
			ps, err := base.PoolStats(ctx, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			round, _ := ledgerTotals(t, base)
			if round["A"].Cmp(new(big.Int).Mul(units(t, 1), big.NewInt(n))) != 0 {
				t.Fatalf("acknowledged shares not in the round: %v", round["A"])
			}
			if tc.interval > 0 {
				if ps.Accepted != 0 || store.count(ledger.BatchAccounting) != n || store.count(ledger.BatchStats) != 0 {
					t.Fatalf("before the interval: pool accepted %d, batches %v", ps.Accepted, store.kinds)
				}
			} else if ps.Accepted != n || store.count(ledger.BatchFull) != n {
				t.Fatalf("inline statistics: pool accepted %d, batches %v", ps.Accepted, store.kinds)
			}
			stop()
			if ps, _ = base.PoolStats(ctx, time.Now()); ps.Accepted != n {
				t.Fatalf("after shutdown pool accepted %d, want %d", ps.Accepted, n)
			}
			if tc.interval > 0 && store.count(ledger.BatchStats) != n {
				t.Fatalf("statistics batches held %d shares, want %d", store.count(ledger.BatchStats), n)
			}
		})
	}
}
