package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// WorkerSeen is one worker's latest accepted share.
type WorkerSeen struct {
	Worker, Address string
	LastShare       time.Time
}

// Workers lists the workers with an accepted share since a time.
type Workers interface {
	LastShares(ctx context.Context, since time.Time) ([]WorkerSeen, error)
}

// Block is one found block as the store lists it.
type Block struct {
	Hash, Status, Finder string
	Height               int64
}

// Blocks lists the newest found blocks, newest first.
type Blocks interface {
	RecentBlocks(ctx context.Context, limit int) ([]Block, error)
}

// Payment is one payout output.
type Payment struct {
	ID, TxID, Address, Status string
	Amount                    int64
}

// Payments lists the newest payout outputs, newest first.
type Payments interface {
	RecentPayments(ctx context.Context, limit int) ([]Payment, error)
}

// Check is a health condition: Run returns nil while it holds.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Sink receives the monitor's events (Dispatcher).
type Sink interface{ Send(ev Event) }

// Sources are what the monitor looks at; nil ones are skipped.
type Sources struct {
	Workers  Workers
	Blocks   Blocks
	Payments Payments
	Checks   []Check
}

// How far back the monitor looks at blocks and payouts each step.
const (
	recentBlocks   = 50
	recentPayments = 200
	// Payout states (payouts/payment) the monitor reports.
	stateBroadcast = "broadcast"
	stateConfirmed = "confirmed"
	stateStuck     = "stuck"
	stateOrphaned  = "orphaned"
)

// Monitor turns changes in the sources into events. Its first step only
// learns the current state (a restart does not re-announce old blocks or
// workers already offline).
type Monitor struct {
	cfg  Config
	src  Sources
	sink Sink
	log  *zap.Logger
	now  func() time.Time

	started  bool
	offline  map[string]bool   // worker → reported offline
	workers  map[string]bool   // workers seen (online or offline)
	blocks   map[string]string // hash → status
	payments map[string]string // id|address → status
	failing  map[string]bool   // check → failing
}

// NewMonitor returns a monitor of src sending to sink.
func NewMonitor(cfg Config, src Sources, sink Sink, log *zap.Logger) *Monitor {
	if log == nil {
		log = zap.NewNop()
	}
	return &Monitor{cfg: cfg.withDefaults(), src: src, sink: sink, log: log, now: time.Now,
		offline: map[string]bool{}, workers: map[string]bool{}, blocks: map[string]string{},
		payments: map[string]string{}, failing: map[string]bool{}}
}

// SetClock replaces time.Now (tests).
func (m *Monitor) SetClock(now func() time.Time) { m.now = now }

// Run steps every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		if err := m.Step(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("alerts: a source could not be read; will look again", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step looks at every source once and sends the events of what changed.
// A source that fails keeps its previous state (no event) and is
// reported in the error; the health checks still run.
func (m *Monitor) Step(ctx context.Context) error {
	now := m.now()
	first := !m.started
	m.started = true
	var errs []error
	emit := func(ev Event) {
		if first && ev.Type != Unhealthy {
			return
		}
		if ev.Time.IsZero() {
			ev.Time = now
		}
		describe(&ev)
		m.sink.Send(ev)
	}
	for _, c := range m.src.Checks {
		cctx, cancel := context.WithTimeout(ctx, max(m.cfg.Interval/2, time.Second))
		err := c.Run(cctx)
		cancel()
		switch {
		case err != nil && !m.failing[c.Name]:
			m.failing[c.Name] = true
			emit(Event{Type: Unhealthy, Check: c.Name, Message: fmt.Sprintf("%s unhealthy: %v", c.Name, err)})
		case err == nil && m.failing[c.Name]:
			delete(m.failing, c.Name)
			emit(Event{Type: Recovered, Check: c.Name, Message: c.Name + " healthy again"})
		}
	}
	if m.src.Workers != nil {
		ws, err := m.src.Workers.LastShares(ctx, now.Add(-24*time.Hour))
		if err != nil {
			errs = append(errs, fmt.Errorf("workers: %w", err))
		} else {
			seen := make(map[string]bool, len(ws))
			for _, w := range ws {
				seen[w.Worker] = true
				m.workers[w.Worker] = true
				last := w.LastShare
				off := now.Sub(last) >= m.cfg.WorkerOffline
				switch {
				case off && !m.offline[w.Worker]:
					m.offline[w.Worker] = true
					emit(Event{Type: WorkerOffline, Address: w.Address, Worker: w.Worker, LastShare: &last})
				case !off && m.offline[w.Worker]:
					delete(m.offline, w.Worker)
					emit(Event{Type: WorkerOnline, Address: w.Address, Worker: w.Worker, LastShare: &last})
				}
			}
			for w := range m.workers { // silent for a day: forgotten
				if !seen[w] {
					delete(m.workers, w)
					delete(m.offline, w)
				}
			}
		}
	}
	if m.src.Blocks != nil {
		bs, err := m.src.Blocks.RecentBlocks(ctx, recentBlocks)
		if err != nil {
			errs = append(errs, fmt.Errorf("blocks: %w", err))
		} else {
			next := make(map[string]string, len(bs))
			for _, b := range bs {
				next[b.Hash] = b.Status
				prev, known := m.blocks[b.Hash]
				addr := addressOf(b.Finder)
				if !known && b.Status != stateOrphaned {
					emit(Event{Type: BlockFound, Height: b.Height, Hash: b.Hash, Worker: b.Finder, Address: addr})
				}
				if b.Status == stateOrphaned && prev != stateOrphaned {
					emit(Event{Type: BlockOrphaned, Height: b.Height, Hash: b.Hash, Worker: b.Finder, Address: addr})
				}
			}
			m.blocks = next
		}
	}
	if m.src.Payments != nil {
		ps, err := m.src.Payments.RecentPayments(ctx, recentPayments)
		if err != nil {
			errs = append(errs, fmt.Errorf("payments: %w", err))
		} else {
			next := make(map[string]string, len(ps))
			for _, p := range ps {
				key := p.ID + "|" + p.Address
				next[key] = p.Status
				prev := m.payments[key]
				if isSent(p.Status) && !isSent(prev) {
					emit(Event{Type: PayoutSent, Address: p.Address, TxID: p.TxID, Amount: p.Amount})
				}
				if p.Status == stateStuck && prev != stateStuck {
					emit(Event{Type: PayoutStuck, Address: p.Address, TxID: p.TxID, Amount: p.Amount})
				}
			}
			m.payments = next
		}
	}
	return errors.Join(errs...)
}

// isSent: the node has the payout's transaction.
func isSent(state string) bool {
	return state == stateBroadcast || state == stateConfirmed || state == stateStuck
}

// addressOf is the payout address of a worker name ("address.worker").
func addressOf(worker string) string {
	for i := 0; i < len(worker); i++ {
		if worker[i] == '.' {
			return worker[:i]
		}
	}
	return worker
}
