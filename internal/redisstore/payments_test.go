package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

func paymentsTestStore(t *testing.T) (*Store, *redis.Client) {
	t.Helper()
	r := testenv.StartRedis(t, "--appendonly", "no")
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return New(rdb, Config{Prefix: "ptest"}), rdb
}

func outpoint(i int) string {
	return wire.OutPoint{Hash: chainhash.DoubleHashH([]byte{byte(i)}), Index: uint32(i)}.String()
}

// seedPayments writes balances, the fee account and UTXOs.
func seedPayments(t *testing.T, s *Store, rdb *redis.Client) {
	t.Helper()
	ctx := context.Background()
	if err := rdb.HSet(ctx, s.BalancesKey(), "addrA", 5000, "addrB", 7000).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, s.FeeBalanceKey(), 300, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, s.UTXOsKey(), outpoint(1), 10000, outpoint(2), 2300).Err(); err != nil {
		t.Fatal(err)
	}
}

func testPayout(id int64) *payment.Payout {
	return &payment.Payout{
		ID: id, State: payment.StatePending, Created: time.Unix(1700000000, 0).UTC(),
		TxID:     chainhash.DoubleHashH([]byte("tx")).String(),
		Fee:      200,
		FeePayer: payment.FeePayerPool, FeeAccountDebit: 200,
		Outputs: []payment.Output{{Address: "addrA", Debit: 5000, Amount: 5000}, {Address: "addrB", Debit: 4000, Amount: 4000}},
		Inputs:  []payment.Input{{OutPoint: outpoint(1), Value: 10000}},
		// 10000 - 9000 - 200
		ChangeVout: 2, ChangeValue: 800,
	}
}

// snapshot is everything CommitPayout may touch.
func snapshot(t *testing.T, s *Store, rdb *redis.Client) map[string]any {
	t.Helper()
	ctx := context.Background()
	out := map[string]any{}
	for _, k := range []string{s.BalancesKey(), s.UTXOsKey(), s.payoutTotalsKey()} {
		m, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = m
	}
	fee, _ := rdb.Get(ctx, s.FeeBalanceKey()).Result()
	out["fee"] = fee
	n, _ := rdb.ZCard(ctx, s.payoutsIndexKey()).Result()
	out["payouts"] = n
	return out
}

func TestCommitPayoutAllOrNothing(t *testing.T) {
	s, rdb := paymentsTestStore(t)
	ctx := context.Background()
	cases := []struct {
		name   string
		change func(p *payment.Payout)
	}{
		{"balance too low", func(p *payment.Payout) { p.Outputs[1].Debit = 7001 }},
		{"unknown address", func(p *payment.Payout) { p.Outputs[1].Address = "addrZ" }},
		{"utxo missing", func(p *payment.Payout) { p.Inputs = append(p.Inputs, payment.Input{OutPoint: outpoint(9), Value: 1}) }},
		{"utxo value differs", func(p *payment.Payout) { p.Inputs[0].Value = 9999 }},
		{"fee account short", func(p *payment.Payout) { p.FeeAccountDebit = 301 }},
	}
	seedPayments(t, s, rdb)
	before := snapshot(t, s, rdb)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := testPayout(int64(100 + i))
			tc.change(p)
			err := s.CommitPayout(ctx, p)
			if !errors.Is(err, payment.ErrConflict) {
				t.Fatalf("CommitPayout = %v, want ErrConflict", err)
			}
			if after := snapshot(t, s, rdb); !equalSnap(before, after) {
				t.Fatalf("state changed by a failed commit:\nbefore %v\nafter  %v", before, after)
			}
			if _, err := s.Payout(ctx, p.ID); !errors.Is(err, payment.ErrNotFound) {
				t.Fatalf("payout written by a failed commit: %v", err)
			}
		})
	}
}

func equalSnap(a, b map[string]any) bool {
	for k, v := range a {
		switch x := v.(type) {
		case map[string]string:
			y, _ := b[k].(map[string]string)
			if len(x) != len(y) {
				return false
			}
			for f, val := range x {
				if y[f] != val {
					return false
				}
			}
		default:
			if v != b[k] {
				return false
			}
		}
	}
	return true
}

func TestPayoutLifecycle(t *testing.T) {
	s, rdb := paymentsTestStore(t)
	ctx := context.Background()
	seedPayments(t, s, rdb)
	id, err := s.NextPayoutID(ctx)
	if err != nil || id != 1 {
		t.Fatalf("NextPayoutID = %d, %v", id, err)
	}
	p := testPayout(id)
	if err := s.CommitPayout(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitPayout(ctx, p); !errors.Is(err, payment.ErrConflict) {
		t.Fatalf("second commit of the same id = %v, want ErrConflict", err)
	}
	bal, err := s.Balances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := bal["addrA"]; ok || bal["addrB"] != 3000 || len(bal) != 1 {
		t.Fatalf("balances after commit = %v, want addrA removed (0) and addrB 3000", bal)
	}
	if fee, _ := s.FeeBalance(ctx); fee != 100 {
		t.Fatalf("fee account = %d, want 100", fee)
	}
	utxos, _ := s.UTXOs(ctx)
	if len(utxos) != 1 || utxos[0].Key() != outpoint(2) || utxos[0].Value != 2300 {
		t.Fatalf("utxos after commit = %v", utxos)
	}
	tot, _ := s.Totals(ctx)
	if tot != (payment.Totals{Paid: 9000, Fees: 200, Payouts: 1}) {
		t.Fatalf("totals = %+v", tot)
	}
	got, err := s.Payout(ctx, id)
	if err != nil || got.State != payment.StatePending || got.Paid() != 9000 || !got.Created.Equal(p.Created) {
		t.Fatalf("Payout = %+v, %v", got, err)
	}

	// State machine: only allowed transitions are written.
	p.State = payment.StateBroadcast
	if err := s.UpdatePayout(ctx, p, payment.StateUnsigned); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("update from a state it is not in = %v, want ErrWrongState", err)
	}
	if err := s.UpdatePayout(ctx, p, payment.StatePending); err != nil {
		t.Fatal(err)
	}
	missing := testPayout(99)
	if err := s.UpdatePayout(ctx, missing, payment.StatePending); !errors.Is(err, payment.ErrNotFound) {
		t.Fatalf("update of a missing payout = %v, want ErrNotFound", err)
	}
	open, _ := s.OpenPayouts(ctx)
	if len(open) != 1 || open[0].State != payment.StateBroadcast {
		t.Fatalf("open = %+v", open)
	}

	p.State = payment.StateConfirmed
	if err := s.ConfirmPayout(ctx, p, payment.StateBroadcast, payment.StateStuck); err != nil {
		t.Fatal(err)
	}
	if err := s.ConfirmPayout(ctx, p, payment.StateBroadcast); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("second confirm = %v, want ErrWrongState", err)
	}
	open, _ = s.OpenPayouts(ctx)
	if len(open) != 0 {
		t.Fatalf("open after confirm = %+v", open)
	}
	utxos, _ = s.UTXOs(ctx)
	change, _ := p.Change()
	var found bool
	for _, u := range utxos {
		found = found || (u.OutPoint == change.OutPoint && u.Value == 800)
	}
	if !found || len(utxos) != 2 {
		t.Fatalf("utxos after confirm = %v, want the 800 sat change back", utxos)
	}
	list, _ := s.Payouts(ctx, 10)
	if len(list) != 1 || list[0].State != payment.StateConfirmed {
		t.Fatalf("Payouts = %+v", list)
	}
}

func TestThresholds(t *testing.T) {
	s, _ := paymentsTestStore(t)
	ctx := context.Background()
	if err := s.SetThreshold(ctx, "addrA", 50000); err != nil {
		t.Fatal(err)
	}
	if err := s.SetThreshold(ctx, "addrB", 70000); err != nil {
		t.Fatal(err)
	}
	if err := s.SetThreshold(ctx, "addrB", 0); err != nil {
		t.Fatal(err)
	}
	m, err := s.Thresholds(ctx)
	if err != nil || len(m) != 1 || m["addrA"] != 50000 {
		t.Fatalf("Thresholds = %v, %v", m, err)
	}
}

func TestAbandonPayoutRestores(t *testing.T) {
	t.Run("fee", func(t *testing.T) { testAbandonPayoutRestores(t, 200) })
	// A payout whose fee is 0 (the "-0" Redis refuses as an integer) can be
	// abandoned too.
	t.Run("no fee", func(t *testing.T) { testAbandonPayoutRestores(t, 0) })
}

func testAbandonPayoutRestores(t *testing.T, fee int64) {
	s, rdb := paymentsTestStore(t)
	ctx := context.Background()
	seedPayments(t, s, rdb)
	before := snapshot(t, s, rdb)
	p := testPayout(1)
	p.Fee, p.FeeAccountDebit, p.ChangeValue = fee, fee, 1000-fee
	if err := s.CommitPayout(ctx, p); err != nil {
		t.Fatal(err)
	}
	p.State = payment.StateAbandoned
	if err := s.UpdatePayout(ctx, p, payment.StatePending); err == nil {
		t.Fatal("UpdatePayout wrote an abandoned state")
	}
	if err := s.AbandonPayout(ctx, p, nil, payment.StateUnsigned); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("abandon from a state it is not in = %v, want ErrWrongState", err)
	}
	restore := []payment.UTXO{}
	for _, in := range p.Inputs {
		op, _ := wire.NewOutPointFromString(in.OutPoint)
		restore = append(restore, payment.UTXO{OutPoint: *op, Value: in.Value})
	}
	if err := s.AbandonPayout(ctx, p, restore, payment.StatePending); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, s, rdb)
	// Everything is back except the payout's place in the index and the
	// totals' zeroed fields.
	for _, k := range []string{s.BalancesKey(), s.UTXOsKey(), "fee"} {
		if !equalSnap(map[string]any{k: before[k]}, map[string]any{k: after[k]}) {
			t.Fatalf("%s: before %v, after %v", k, before[k], after[k])
		}
	}
	tot, _ := s.Totals(ctx)
	if tot.Paid != 0 || tot.Fees != 0 {
		t.Fatalf("totals after abandon: %+v", tot)
	}
	if open, _ := s.OpenPayouts(ctx); len(open) != 0 {
		t.Fatalf("open after abandon: %v", open)
	}
	if got, _ := s.Payout(ctx, 1); got.State != payment.StateAbandoned {
		t.Fatalf("state = %s", got.State)
	}
	if err := s.AbandonPayout(ctx, p, restore, payment.StatePending); !errors.Is(err, payment.ErrWrongState) {
		t.Fatalf("second abandon = %v, want ErrWrongState", err)
	}
}
