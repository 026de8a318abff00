package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// pageOf is a BlockLister/BlockPager and PaymentLister/PaymentPager over
// fixed lists: the handlers' paging contract, without a store (the store's
// side runs against Redis in cmd/lode's API and browser tests).
type pageOf struct {
	blocks   []Block
	payments []Payment
}

func (p pageOf) Blocks(ctx context.Context, limit int) ([]Block, error) {
	return p.blocks[:min(limit, len(p.blocks))], nil
}

func (p pageOf) BlocksPage(ctx context.Context, offset, limit int) ([]Block, int, error) {
	from := min(offset, len(p.blocks))
	return p.blocks[from:min(from+limit, len(p.blocks))], len(p.blocks), nil
}

func (p pageOf) Payments(ctx context.Context, limit int) ([]Payment, error) { return p.payments, nil }

func (p pageOf) PaymentsPage(ctx context.Context, offset, limit int) ([]Payment, int, error) {
	from := min(offset, len(p.payments))
	return p.payments[from:min(from+limit, len(p.payments))], len(p.payments), nil
}

type oneMiner struct{ m Miner }

func (o oneMiner) Miner(ctx context.Context, address string, page WorkerPage) (Miner, error) {
	return o.m, nil
}

func TestPagedLists(t *testing.T) {
	var p pageOf
	for h := int64(30); h > 0; h-- {
		p.blocks = append(p.blocks, Block{Height: h, Status: BlockCredited})
	}
	s, err := New(Config{Blocks: p, Payments: p})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s.Handler(), "GET", "/api/v1/blocks?limit=10&offset=25", "", "")
	var r struct {
		Blocks               []Block
		Total, Offset, Limit int
	}
	if code != 200 || json.Unmarshal([]byte(body), &r) != nil || r.Total != 30 || r.Offset != 25 || r.Limit != 10 ||
		len(r.Blocks) != 5 || r.Blocks[0].Height != 5 {
		t.Fatalf("page: %d %s", code, body)
	}
	for _, q := range []string{"offset=-1", "offset=x", "offset=99999999999"} {
		if code, body := do(t, s.Handler(), "GET", "/api/v1/blocks?"+q, "", ""); code != 400 || !strings.Contains(body, "offset:") {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
	if code, body := do(t, s.Handler(), "GET", "/api/v1/payments?offset=3", "", ""); code != 200 || !strings.Contains(body, `"payments": []`) ||
		!strings.Contains(body, `"total": 0`) {
		t.Errorf("payments past the end: %d %s", code, body)
	}
}

func TestMinerPageFigures(t *testing.T) {
	now := time.Now()
	m := Miner{Address: "a", Hashrate: Hashrates{OneDay: 2 * 4294967296.0 / 86400}, Workers: []Worker{
		{Name: "on", Accepted: 97, Rejected: 2, Stale: 1, LastShare: now.Add(-time.Minute)},
		{Name: "off", Accepted: 1, LastShare: now.Add(-11 * time.Minute)},
	}}
	blocks := pageOf{blocks: []Block{{Height: 9, Reward: 50_0000_0000}}}
	s, err := New(Config{Miners: oneMiner{m}, Blocks: blocks, FeePercent: 1, PayoutThreshold: 12345,
		Network: func() (Network, bool) { return Network{Height: 10, Difficulty: 4}, true }})
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, s.Handler(), "GET", "/api/v1/miners/a", "", "")
	var got Miner
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("%d %s", code, body)
	}
	// 2 difficulty a day at network difficulty 4: half a block a day, of
	// 50 BTC less 1 %.
	if got.EstimatedPerDay != 24_7500_0000 {
		t.Errorf("estimated per day %d, want 2475000000", got.EstimatedPerDay)
	}
	if got.PayoutThreshold != 12345 || got.PayoutThresholdOverride {
		t.Errorf("threshold %d override %v, want the pool default", got.PayoutThreshold, got.PayoutThresholdOverride)
	}
	if w := got.Workers[0]; w.Offline || w.RejectRate != 0.03 {
		t.Errorf("worker on: %+v", w)
	}
	if w := got.Workers[1]; !w.Offline {
		t.Errorf("worker off (11 min without a share, default 10 min) not offline: %+v", w)
	}
	if got.Credits == nil {
		t.Error("credits null, want []")
	}
}

func TestSeriesWithoutReader(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := do(t, s.Handler(), "GET", "/api/v1/pool/hashrate", "", ""); code != http.StatusServiceUnavailable {
		t.Errorf("pool series without a reader: %d", code)
	}
}
