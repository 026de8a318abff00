package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/lode-pool/lode/api"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts"
	"github.com/lode-pool/lode/payouts/payment"
	"github.com/lode-pool/lode/shares/ledger"
)

// storeReader adapts the Redis store's domain reads to the API's
// interfaces: it maps statuses and units and gathers what one endpoint needs
// from several store calls.
type storeReader struct {
	store *redisstore.Store
	now   func() time.Time
	// activeTTL caches the worker scan (redisstore.ActiveWorkers), which
	// both /pool and /workers need and which is O(workers).
	activeTTL time.Duration

	mu       sync.Mutex
	active   []redisstore.ActiveWorker
	activeAt time.Time

	// ranked caches the /workers ranking for activeTTL: it reads the
	// statistics of up to maxWorkerStats workers (about 200 Redis reads
	// each), which must not happen once per request. rankMu lets one
	// request compute it while the others wait for the result.
	rankMu   sync.Mutex
	ranked   []api.Worker
	rankedAt time.Time

	// feeBasisPoints is the pool fee the unlocker splits with, for the
	// immature balance.
	feeBasisPoints int64
}

// payoutScan is how many recent payouts a miner's page looks through for
// its payments and paid total.
const payoutScan = 1000

var (
	_ api.PoolReader      = (*storeReader)(nil)
	_ api.BlockLister     = (*storeReader)(nil)
	_ api.MinerReader     = (*storeReader)(nil)
	_ api.PaymentLister   = (*storeReader)(nil)
	_ api.WorkerLister    = (*storeReader)(nil)
	_ api.ThresholdSetter = (*storeReader)(nil)
	_ api.SeriesReader    = (*storeReader)(nil)
	_ api.MinerLister     = (*storeReader)(nil)
	_ api.BlockPager      = (*storeReader)(nil)
	_ api.PaymentPager    = (*storeReader)(nil)
)

func newStoreReader(s *redisstore.Store) *storeReader {
	return &storeReader{store: s, now: time.Now, activeTTL: 10 * time.Second}
}

// activeWorkers returns the workers with a share in the last 24 h, cached.
func (r *storeReader) activeWorkers(ctx context.Context) ([]redisstore.ActiveWorker, error) {
	now := r.now()
	r.mu.Lock()
	if r.active != nil && now.Sub(r.activeAt) < r.activeTTL {
		a := r.active
		r.mu.Unlock()
		return a, nil
	}
	r.mu.Unlock()
	a, err := r.store.ActiveWorkers(ctx, now.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	if a == nil {
		a = []redisstore.ActiveWorker{}
	}
	r.mu.Lock()
	r.active, r.activeAt = a, now
	r.mu.Unlock()
	return a, nil
}

// PoolStats implements api.PoolReader.
func (r *storeReader) PoolStats(ctx context.Context) (api.PoolStats, error) {
	now := r.now()
	ps, err := r.store.PoolStats(ctx, now)
	if err != nil {
		return api.PoolStats{}, err
	}
	active, err := r.activeWorkers(ctx)
	if err != nil {
		return api.PoolStats{}, err
	}
	addrs := map[string]bool{}
	for _, w := range active {
		addrs[w.Address] = true
	}
	total, err := r.store.RoundTotal(ctx)
	if err != nil {
		return api.PoolStats{}, err
	}
	round, err := unitsToDifficulty(total)
	if err != nil {
		return api.PoolStats{}, fmt.Errorf("round total: %w", err)
	}
	out := api.PoolStats{
		Hashrate:        api.Hashrates{TenMinutes: ps.Hashrate10m, OneHour: ps.Hashrate1h, OneDay: ps.Hashrate24h},
		Miners:          len(addrs),
		Workers:         len(active),
		RoundDifficulty: round,
		SharesAccepted:  ps.Accepted,
		SharesRejected:  ps.Rejected,
		SharesStale:     ps.Stale,
		LastShare:       ps.LastShare,
	}
	blocks, err := r.store.Blocks(ctx, 1)
	if err != nil {
		return api.PoolStats{}, err
	}
	if len(blocks) > 0 {
		b := apiBlock(blocks[0])
		out.LastBlock = &b
	}
	return out, nil
}

// unitsToDifficulty turns a diff-units string into a float difficulty
// (shares/ledger's units, for display).
func unitsToDifficulty(units string) (float64, error) {
	u, err := ledger.ParseUnits(units)
	if err != nil {
		return 0, err
	}
	return ledger.UnitsToDifficulty(u), nil
}

// apiBlock maps a block record to the API's view. Statuses are the
// ledger's own words (pending, immature, credited, orphaned): one vocabulary
// in Redis, lodectl, the API and the dashboard. "matured", the API's word
// for credited before, is read as credited should a record carry it.
func apiBlock(b payouts.Block) api.Block {
	status := string(b.Status)
	reward := b.CoinbaseValue
	if b.Status == payouts.StatusCredited || status == "matured" {
		status = api.BlockCredited
		reward = b.Reward
	}
	return api.Block{
		Height:            b.Height,
		Hash:              b.Hash.String(),
		Status:            status,
		Reward:            reward,
		Finder:            b.Finder,
		Confirmations:     b.Confirmations,
		FoundAt:           b.Time.UTC(),
		NetworkDifficulty: b.NetworkDifficulty,
	}
}

// Blocks implements api.BlockLister.
func (r *storeReader) Blocks(ctx context.Context, limit int) ([]api.Block, error) {
	bs, err := r.store.Blocks(ctx, limit)
	if err != nil {
		return nil, err
	}
	return r.apiBlocks(ctx, bs)
}

// BlocksPage implements api.BlockPager.
func (r *storeReader) BlocksPage(ctx context.Context, offset, limit int) ([]api.Block, int, error) {
	bs, total, err := r.store.BlocksPage(ctx, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	out, err := r.apiBlocks(ctx, bs)
	return out, int(total), err
}

// apiBlocks maps block records, with each block's effort: its round's work
// (Σ share difficulty since the previous block) ÷ its network difficulty.
func (r *storeReader) apiBlocks(ctx context.Context, bs []payouts.Block) ([]api.Block, error) {
	hashes := make([]string, len(bs))
	for i, b := range bs {
		hashes[i] = b.Hash.String()
	}
	rounds, err := r.store.BlockRoundTotals(ctx, hashes)
	if err != nil {
		return nil, err
	}
	out := make([]api.Block, 0, len(bs))
	for i, b := range bs {
		ab := apiBlock(b)
		if work, err := unitsToDifficulty(rounds[i]); err == nil && rounds[i] != "" && b.NetworkDifficulty > 0 {
			ab.Effort = work / b.NetworkDifficulty
		}
		out = append(out, ab)
	}
	return out, nil
}

// HashrateSeries implements api.SeriesReader: bucket sums become H/s
// (Σ difficulty × 2^32 ÷ the bucket's seconds).
func (r *storeReader) HashrateSeries(ctx context.Context, address, worker string) (api.HashrateSeries, error) {
	scope := redisstore.HashrateScope{Address: address}
	if address != "" && worker != "" {
		scope.Worker = address + "." + worker
	}
	st, err := r.store.HashrateSeries(ctx, scope, r.now())
	if err != nil {
		return api.HashrateSeries{}, err
	}
	const two32 = 4294967296.0
	points := func(bs []redisstore.HashrateBucket, seconds float64) []api.HashratePoint {
		out := make([]api.HashratePoint, len(bs))
		for i, b := range bs {
			out[i] = api.HashratePoint{Time: b.Start, Hashrate: b.Difficulty * two32 / seconds}
		}
		return out
	}
	return api.HashrateSeries{Minutes: points(st.Minutes, 60), Slots: points(st.Slots, 600)}, nil
}

// maxWorkerStats bounds the workers whose statistics one /workers request
// reads (the most recently active ones).
const maxWorkerStats = 1000

// Workers implements api.WorkerLister: the active workers with the highest
// 10-minute hashrate first, limit of them.
func (r *storeReader) Workers(ctx context.Context, limit int) ([]api.Worker, error) {
	r.rankMu.Lock()
	defer r.rankMu.Unlock()
	if r.ranked == nil || r.now().Sub(r.rankedAt) >= r.activeTTL {
		ranked, err := r.rankWorkers(ctx)
		if err != nil {
			return nil, err
		}
		r.ranked, r.rankedAt = ranked, r.now()
	}
	return slices.Clone(r.ranked[:min(limit, len(r.ranked))]), nil
}

// rankWorkers reads the statistics of the most recently active workers (at
// most maxWorkerStats) and sorts them by 10-minute hashrate.
func (r *storeReader) rankWorkers(ctx context.Context) ([]api.Worker, error) {
	active, err := r.activeWorkers(ctx)
	if err != nil {
		return nil, err
	}
	if len(active) > maxWorkerStats {
		active = active[:maxWorkerStats]
	}
	now := r.now()
	out := make([]api.Worker, 0, len(active))
	for _, a := range active {
		st, err := r.store.WorkerStats(ctx, a.Worker, now)
		if err != nil {
			return nil, err
		}
		w := apiWorker(a.Worker, a.Address, st)
		w.Address = a.Address
		out = append(out, w)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Hashrate.TenMinutes > out[j].Hashrate.TenMinutes })
	return out, nil
}

// TopMiners implements api.MinerLister: the ranked workers (the most
// recently active maxWorkerStats, cached like /workers) summed per address,
// highest 10-minute hashrate first.
func (r *storeReader) TopMiners(ctx context.Context, limit int) ([]api.MinerSummary, error) {
	ws, err := r.Workers(ctx, maxWorkerStats)
	if err != nil {
		return nil, err
	}
	by := map[string]*api.MinerSummary{}
	var out []*api.MinerSummary
	for _, w := range ws {
		m := by[w.Address]
		if m == nil {
			m = &api.MinerSummary{Address: w.Address}
			by[w.Address] = m
			out = append(out, m)
		}
		m.Workers++
		m.Hashrate.TenMinutes += w.Hashrate.TenMinutes
		m.Hashrate.OneHour += w.Hashrate.OneHour
		m.Hashrate.OneDay += w.Hashrate.OneDay
		if w.LastShare.After(m.LastShare) {
			m.LastShare = w.LastShare
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Hashrate.TenMinutes > out[j].Hashrate.TenMinutes })
	res := make([]api.MinerSummary, 0, min(limit, len(out)))
	for _, m := range out[:min(limit, len(out))] {
		res = append(res, *m)
	}
	return res, nil
}

func apiWorker(full, address string, st ledger.WorkerStats) api.Worker {
	name := ""
	if len(full) > len(address) && full[:len(address)] == address && full[len(address)] == '.' {
		name = full[len(address)+1:]
	}
	return api.Worker{
		Name:      name,
		Hashrate:  api.Hashrates{TenMinutes: st.Hashrate10m, OneHour: st.Hashrate1h, OneDay: st.Hashrate24h},
		Accepted:  st.Accepted,
		Rejected:  st.Rejected,
		Stale:     st.Stale,
		BestShare: st.BestDifficulty,
		LastShare: st.LastShare.UTC(),
	}
}

// Miner implements api.MinerReader. An address with no statistics, no
// balance and no payments is unknown (api.ErrNotFound). Only the workers of
// the requested page are read (about 200 Redis reads each, for their
// hashrate buckets); the last share comes from the address's worker index,
// which holds every worker's.
func (r *storeReader) Miner(ctx context.Context, address string, page api.WorkerPage) (api.Miner, error) {
	now := r.now()
	ms, err := r.store.MinerStats(ctx, address, now)
	if err != nil {
		return api.Miner{}, err
	}
	bal, err := r.store.Balance(ctx, address)
	if err != nil {
		return api.Miner{}, err
	}
	thresholds, err := r.store.Thresholds(ctx)
	if err != nil {
		return api.Miner{}, err
	}
	payouts, err := r.store.Payouts(ctx, payoutScan)
	if err != nil {
		return api.Miner{}, err
	}
	m := api.Miner{
		Address:         address,
		Balance:         bal,
		PayoutThreshold: thresholds[address],
		Hashrate:        api.Hashrates{TenMinutes: ms.Hashrate10m, OneHour: ms.Hashrate1h, OneDay: ms.Hashrate24h},
		WorkersTotal:    len(ms.Workers),
		WorkersOffset:   page.Offset,
		Workers:         []api.Worker{},
		Payments:        []api.Payment{},
	}
	for _, p := range payouts {
		for _, o := range p.Outputs {
			if o.Address != address {
				continue
			}
			if p.State != payment.StateUnsigned {
				m.Paid += o.Amount
			}
			if len(m.Payments) < 50 {
				m.Payments = append(m.Payments, apiPayment(p, o))
			}
		}
	}
	names := make([]string, 0, len(ms.Workers))
	for name, last := range ms.Workers {
		names = append(names, name)
		if last = last.UTC(); last.After(m.LastShare) {
			m.LastShare = last
		}
	}
	sort.Strings(names)
	if page.Limit <= 0 {
		page.Limit = api.DefaultMinerWorkers
	}
	from := min(max(page.Offset, 0), len(names))
	for _, name := range names[from:min(from+page.Limit, len(names))] {
		full := address
		if name != "" {
			full += "." + name
		}
		st, err := r.store.WorkerStats(ctx, full, now)
		if err != nil {
			return api.Miner{}, err
		}
		m.Workers = append(m.Workers, apiWorker(full, address, st))
	}
	if len(ms.Workers) == 0 && m.Balance == 0 && len(m.Payments) == 0 {
		return api.Miner{}, fmt.Errorf("miner %s: %w", address, api.ErrNotFound)
	}
	if m.ImmatureBalance, err = r.immatureBalance(ctx, address); err != nil {
		return api.Miner{}, err
	}
	if m.Credits, err = r.recentCredits(ctx, address); err != nil {
		return api.Miner{}, err
	}
	return m, nil
}

// Bounds of a miner page's credit reads: the latest minerCreditScan blocks
// are looked through (credits arrive 100 blocks after a block is found, so
// the newest are immature), minerCredits credits listed.
const (
	minerCreditScan = 1000
	minerCredits    = 20
)

// recentCredits lists what the latest credited blocks credited address.
func (r *storeReader) recentCredits(ctx context.Context, address string) ([]api.Credit, error) {
	bs, err := r.store.Blocks(ctx, minerCreditScan)
	if err != nil {
		return nil, err
	}
	var credited []payouts.Block
	hashes := []string{}
	for _, b := range bs {
		if b.Status == payouts.StatusCredited {
			credited = append(credited, b)
			hashes = append(hashes, b.Hash.String())
		}
	}
	amounts, err := r.store.AddressCredits(ctx, hashes, address)
	if err != nil {
		return nil, err
	}
	out := []api.Credit{}
	for i, b := range credited {
		if amounts[i] > 0 && len(out) < minerCredits {
			out = append(out, api.Credit{Height: b.Height, Hash: hashes[i], Amount: amounts[i], FoundAt: b.Time.UTC()})
		}
	}
	return out, nil
}

// immatureBalance is what the blocks not yet credited (pending, immature)
// will credit address by their PPLNS snapshots: the unlocker's own split
// (payouts.Split) at the pool fee, of each block's coinbase value.
func (r *storeReader) immatureBalance(ctx context.Context, address string) (int64, error) {
	bs, err := r.store.UnconfirmedBlocks(ctx)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, b := range bs {
		if b.Status != payouts.StatusPending && b.Status != payouts.StatusImmature {
			continue
		}
		contrib, err := r.store.Contributions(ctx, b.Hash)
		if err != nil {
			return 0, err
		}
		alloc, err := payouts.Split(b.CoinbaseValue, r.feeBasisPoints, contrib)
		if err != nil {
			continue // an empty snapshot credits nobody
		}
		for _, c := range alloc.Credits {
			if c.Address == address {
				sum += c.Amount
			}
		}
	}
	return sum, nil
}

func apiPayment(p *payment.Payout, o payment.Output) api.Payment {
	t := p.Created
	if !p.BroadcastAt.IsZero() {
		t = p.BroadcastAt
	}
	return api.Payment{
		ID:            strconv.FormatInt(p.ID, 10),
		TxID:          p.TxID,
		Address:       o.Address,
		Amount:        o.Amount,
		Status:        string(p.State),
		Confirmations: p.Confirmations,
		Time:          t.UTC(),
		// The node's refusal reason, or that it could not be reached.
		BroadcastError: p.BroadcastProblem(),
	}
}

// PaymentsPage implements api.PaymentPager: the outputs of limit payouts
// from offset, one row per paid address.
func (r *storeReader) PaymentsPage(ctx context.Context, offset, limit int) ([]api.Payment, int, error) {
	ps, total, err := r.store.PayoutsPage(ctx, offset, limit)
	if err != nil {
		return nil, 0, err
	}
	out := make([]api.Payment, 0, len(ps))
	for _, p := range ps {
		for _, o := range p.Outputs {
			out = append(out, apiPayment(p, o))
		}
	}
	return out, int(total), nil
}

// Payments implements api.PaymentLister: one row per paid address, newest
// payout first.
func (r *storeReader) Payments(ctx context.Context, limit int) ([]api.Payment, error) {
	ps, err := r.store.Payouts(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]api.Payment, 0, len(ps))
	for _, p := range ps {
		for _, o := range p.Outputs {
			if len(out) == limit {
				return out, nil
			}
			out = append(out, apiPayment(p, o))
		}
	}
	return out, nil
}

// SetPayoutThreshold implements api.ThresholdSetter.
func (r *storeReader) SetPayoutThreshold(ctx context.Context, address string, sats int64) error {
	return r.store.SetThreshold(ctx, address, sats)
}
