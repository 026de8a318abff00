package blocktemplate

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// sampleTx builds a transaction with n inputs (witness items on the inputs
// when witness is set) and two outputs.
func sampleTx(n int, witness bool) *wire.MsgTx {
	m := wire.NewMsgTx(2)
	for k := range n {
		var h chainhash.Hash
		h[0], h[1] = byte(k), 0x5a
		in := wire.NewTxIn(wire.NewOutPoint(&h, uint32(k)), []byte{0x51}, nil)
		if witness {
			in.Witness = wire.TxWitness{bytes.Repeat([]byte{1}, 72), bytes.Repeat([]byte{2}, 33)}
		}
		m.AddTxIn(in)
	}
	m.AddTxOut(wire.NewTxOut(1000, append([]byte{0, 20}, bytes.Repeat([]byte{3}, 20)...)))
	m.AddTxOut(wire.NewTxOut(2000, bytes.Repeat([]byte{0x6a}, 300))) // a 3-byte varint length
	m.LockTime = 899999
	return m
}

func serialize(t testing.TB, m *wire.MsgTx) []byte {
	var b bytes.Buffer
	if err := m.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestScanTxMatchesWire: the hashes, sizes and coinbase test of scanTx equal
// btcd's for legacy and witness transactions, and malformed ones fail.
func TestScanTxMatchesWire(t *testing.T) {
	coinbase := wire.NewMsgTx(1)
	coinbase.AddTxIn(wire.NewTxIn(wire.NewOutPoint(&chainhash.Hash{}, ^uint32(0)), []byte{1, 2}, nil))
	coinbase.AddTxOut(wire.NewTxOut(5000000000, []byte{0x51}))
	tests := []struct {
		name string
		tx   *wire.MsgTx
	}{
		{"legacy, one input", sampleTx(1, false)},
		{"legacy, 300 inputs", sampleTx(300, false)},
		{"witness, one input", sampleTx(1, true)},
		{"witness, 3 inputs", sampleTx(3, true)},
		{"coinbase", coinbase},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := serialize(t, tc.tx)
			sh, err := scanTx(data)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sh.txid(data), tc.tx.TxHash(); got != want {
				t.Errorf("txid %s, want %s", got, want)
			}
			if got, want := sh.wtxid(data), tc.tx.WitnessHash(); got != want {
				t.Errorf("wtxid %s, want %s", got, want)
			}
			if sh.witness != tc.tx.HasWitness() || sh.strippedSize() != tc.tx.SerializeSizeStripped() {
				t.Errorf("witness %v size %d, want %v %d", sh.witness, sh.strippedSize(), tc.tx.HasWitness(), tc.tx.SerializeSizeStripped())
			}
			if sh.coinbase != (tc.name == "coinbase") {
				t.Errorf("coinbase %v", sh.coinbase)
			}
			for cut := range len(data) {
				if _, err := scanTx(data[:cut]); err == nil {
					t.Fatalf("%d of %d bytes accepted", cut, len(data))
				}
			}
			if _, err := scanTx(append(bytes.Clone(data), 0)); err == nil {
				t.Fatal("trailing byte accepted")
			}
		})
	}
	bad := map[string]string{
		"witness flag 2":        "02000000" + "0002" + "01" + hex.EncodeToString(make([]byte, 36)) + "00" + "ffffffff" + "00" + "00000000",
		"no inputs":             "02000000" + "00" + "00" + "00000000",
		"non-canonical varint":  "02000000" + "fd0100" + hex.EncodeToString(make([]byte, 36)) + "00ffffffff" + "00" + "00000000",
		"input count too large": "02000000" + "ff" + "ffffffffffffffff",
	}
	for name, h := range bad {
		raw, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := scanTx(raw); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzScanTx: whatever scanTx accepts, btcd decodes to the same hashes and
// sizes (scanTx may refuse what btcd takes, never the other way round with
// other hashes).
func FuzzScanTx(f *testing.F) {
	for _, m := range []*wire.MsgTx{sampleTx(1, false), sampleTx(2, true)} {
		f.Add(serialize(f, m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sh, err := scanTx(data)
		if err != nil {
			return
		}
		var m wire.MsgTx
		rd := bytes.NewReader(data)
		if err := m.Deserialize(rd); err != nil || rd.Len() != 0 {
			t.Fatalf("scanTx accepted what btcd refuses (%v, %d left)", err, rd.Len())
		}
		if sh.txid(data) != m.TxHash() || sh.wtxid(data) != m.WitnessHash() || sh.witness != m.HasWitness() ||
			sh.strippedSize() != m.SerializeSizeStripped() {
			t.Fatalf("shape %+v disagrees with btcd", sh)
		}
	})
}
