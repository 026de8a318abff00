package payouts

import (
	"testing"
	"time"

	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/shares/ledger"
)

func TestNewFoundBlock(t *testing.T) {
	pool := []byte{0x00, 0x14, 1, 2, 3}
	other := []byte{0x6a, 0x24}
	cb := wire.NewMsgTx(1)
	cb.AddTxIn(wire.NewTxIn(&wire.OutPoint{Index: 0xffffffff}, []byte{1, 2}, nil))
	cb.AddTxOut(wire.NewTxOut(0, other)) // e.g. a witness commitment first
	cb.AddTxOut(wire.NewTxOut(600, pool))
	cb.AddTxOut(wire.NewTxOut(400, pool))
	blk := wire.NewMsgBlock(&wire.BlockHeader{Version: 4, Bits: 0x1d00ffff, Timestamp: time.Unix(1_700_000_000, 0)})
	blk.AddTransaction(cb)
	fb, err := NewFoundBlock(blk, 42, "addr.rig", pool)
	if err != nil {
		t.Fatal(err)
	}
	want := FoundBlock{
		Hash: blk.BlockHash(), Height: 42, Finder: "addr.rig", CoinbaseValue: 1000,
		CoinbaseOutpoint:  wire.OutPoint{Hash: cb.TxHash(), Index: 1},
		NetworkDifficulty: 1, // 0x1d00ffff is difficulty 1
		Time:              time.Unix(1_700_000_000, 0),
	}
	if fb != want {
		t.Errorf("NewFoundBlock = %+v\nwant %+v", fb, want)
	}
	if _, err := NewFoundBlock(blk, 42, "x", []byte{0x51}); err == nil {
		t.Error("a coinbase not paying the pool was accepted")
	}
	if _, err := NewFoundBlock(wire.NewMsgBlock(&wire.BlockHeader{}), 1, "x", pool); err == nil {
		t.Error("a block without coinbase was accepted")
	}
}

func TestBlockStatusFinal(t *testing.T) {
	for s, want := range map[BlockStatus]bool{StatusPending: false, StatusImmature: false, StatusCredited: true, StatusOrphaned: true} {
		if s.Final() != want {
			t.Errorf("%s.Final() = %v", s, !want)
		}
	}
}

func TestRecorderConfig(t *testing.T) {
	if _, err := NewRecorder(RecorderConfig{}); err == nil {
		t.Error("recorder without ledger accepted")
	}
	c := RecorderConfig{Ledger: struct{ Ledger }{}, WindowFactor: -1}
	if err := c.Validate(); err == nil {
		t.Error("negative window factor accepted")
	}
	c.WindowFactor = 0
	if err := c.Validate(); err != nil || c.WindowFactor != ledger.DefaultWindowFactor {
		t.Errorf("default window factor: %v %v", c.WindowFactor, err)
	}
}
