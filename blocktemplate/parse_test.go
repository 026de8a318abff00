package blocktemplate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/wire"
)

var gbtFixtures = []struct {
	file   string
	height int64
	txs    int
}{
	{"regtest-506-p2poolv2.json", 506, 4},
	{"signet-956-p2poolv2.json", 956, 4},
	{"testnet3-2442185-public-pool.json", 2442185, 5},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "gbt", name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestParseCoreFixtures parses real Bitcoin Core templates and checks the
// fields against the JSON (an independent decode with generic maps).
func TestParseCoreFixtures(t *testing.T) {
	for _, fx := range gbtFixtures {
		t.Run(fx.file, func(t *testing.T) {
			raw := readFixture(t, fx.file)
			tpl, err := ParseTemplate(raw)
			if err != nil {
				t.Fatalf("ParseTemplate: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			if tpl.Height != fx.height || len(tpl.Transactions) != fx.txs {
				t.Fatalf("height %d txs %d, want %d %d", tpl.Height, len(tpl.Transactions), fx.height, fx.txs)
			}
			if got, want := tpl.PrevHash.String(), m["previousblockhash"].(string); got != want {
				t.Errorf("prevhash %s, want %s", got, want)
			}
			if got, want := tpl.CoinbaseValue, int64(m["coinbasevalue"].(float64)); got != want {
				t.Errorf("coinbasevalue %d, want %d", got, want)
			}
			if tpl.WitnessCommitment == nil || strings.ToLower(m["default_witness_commitment"].(string)) != hexs(tpl.WitnessCommitment) {
				t.Errorf("witness commitment %x", tpl.WitnessCommitment)
			}
			if tpl.LongPollID != m["longpollid"].(string) {
				t.Errorf("longpollid %q", tpl.LongPollID)
			}
			var fees int64
			for i, tx := range tpl.Transactions {
				mt := m["transactions"].([]any)[i].(map[string]any)
				if tx.TxID.String() != mt["txid"] || tx.WTxID.String() != mt["hash"] {
					t.Errorf("tx %d: txid %s wtxid %s", i, tx.TxID, tx.WTxID)
				}
				if tx.Weight != int64(mt["weight"].(float64)) {
					t.Errorf("tx %d: weight %d", i, tx.Weight)
				}
				fees += tx.Fee
			}
			if fees <= 0 {
				t.Errorf("fees %d", fees)
			}
			if tpl.Target.Sign() <= 0 || tpl.MinTime <= 0 || tpl.MinTime > tpl.CurTime {
				t.Errorf("target %v mintime %d curtime %d", tpl.Target, tpl.MinTime, tpl.CurTime)
			}
		})
	}
}

// mutate decodes a fixture into a map, applies f and re-encodes it.
func mutate(t testing.TB, raw []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func firstTx(m map[string]any) map[string]any { return m["transactions"].([]any)[0].(map[string]any) }

func TestParseTemplateErrors(t *testing.T) {
	base := readFixture(t, "regtest-506-p2poolv2.json")
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		wantErr string
	}{
		{"missing coinbasevalue", func(m map[string]any) { delete(m, "coinbasevalue") }, "missing coinbasevalue"},
		{"missing version", func(m map[string]any) { delete(m, "version") }, "missing version"},
		{"missing prevhash", func(m map[string]any) { delete(m, "previousblockhash") }, "missing previousblockhash"},
		{"missing bits", func(m map[string]any) { delete(m, "bits") }, "missing bits"},
		{"missing height", func(m map[string]any) { delete(m, "height") }, "missing height"},
		{"missing curtime", func(m map[string]any) { delete(m, "curtime") }, "missing curtime"},
		{"missing transactions", func(m map[string]any) { delete(m, "transactions") }, "missing transactions"},
		{"bad prevhash hex", func(m map[string]any) { m["previousblockhash"] = strings.Repeat("zz", 32) }, "previousblockhash"},
		{"short prevhash", func(m map[string]any) { m["previousblockhash"] = "00ff" }, "previousblockhash"},
		{"bits not hex", func(m map[string]any) { m["bits"] = "xyz12345" }, "bits"},
		{"bits wrong length", func(m map[string]any) { m["bits"] = "207fff" }, "bits"},
		{"bits target disagree", func(m map[string]any) { m["bits"] = "1d00ffff" }, "disagree"},
		{"target bad hex", func(m map[string]any) { m["target"] = "nothex" }, "target"},
		{"negative coinbasevalue", func(m map[string]any) { m["coinbasevalue"] = -1 }, "coinbasevalue"},
		{"coinbasevalue string", func(m map[string]any) { m["coinbasevalue"] = "5000" }, "decode json"},
		{"tx missing data", func(m map[string]any) { delete(firstTx(m), "data") }, "missing data"},
		{"tx data bad hex", func(m map[string]any) { firstTx(m)["data"] = "0g" }, "bad hex"},
		{"tx data truncated", func(m map[string]any) { d := firstTx(m)["data"].(string); firstTx(m)["data"] = d[:len(d)-10] }, "decode"},
		{"tx data trailing", func(m map[string]any) { firstTx(m)["data"] = firstTx(m)["data"].(string) + "00" }, "trailing"},
		{"tx txid mismatch", func(m map[string]any) { firstTx(m)["txid"] = strings.Repeat("11", 32) }, "hashes to txid"},
		{"tx hash mismatch", func(m map[string]any) { firstTx(m)["hash"] = strings.Repeat("11", 32) }, "hashes to wtxid"},
		{"tx txid bad hex", func(m map[string]any) { firstTx(m)["txid"] = "abc" }, "txid"},
		{"coinbaseaux bad hex", func(m map[string]any) { m["coinbaseaux"] = map[string]any{"flags": "zz"} }, "coinbaseaux"},
		{"commitment mismatch", func(m map[string]any) {
			m["default_witness_commitment"] = "6a24aa21a9ed" + strings.Repeat("00", 32)
		}, "does not commit"},
		{"commitment not a commitment", func(m map[string]any) { m["default_witness_commitment"] = "6a" }, "not a witness commitment"},
		{"bare commitment mismatch", func(m map[string]any) { m["default_witness_commitment"] = strings.Repeat("00", 32) }, "does not commit"},
		{"witness txs without commitment", func(m map[string]any) { delete(m, "default_witness_commitment") }, "default_witness_commitment is missing"},
		{"dropped transaction", func(m map[string]any) { m["transactions"] = m["transactions"].([]any)[1:] }, "does not commit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTemplate(mutate(t, base, tc.edit))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrBadTemplate) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q, want ErrBadTemplate containing %q", err, tc.wantErr)
			}
		})
	}
	if _, err := ParseTemplate([]byte("not json")); !errors.Is(err, ErrBadTemplate) {
		t.Errorf("not json: %v", err)
	}
	if _, err := ParseTemplate([]byte("null")); !errors.Is(err, ErrBadTemplate) {
		t.Errorf("null: %v", err)
	}
}

// TestParseBtcdShape covers btcd's template shape: no rules, no txid (the
// txid is computed from the data), coinbaseaux flags, no commitment when no
// transaction has a witness, and older btcd's hash=txid.
func TestParseBtcdShape(t *testing.T) {
	base := readFixture(t, "regtest-506-p2poolv2.json")
	// A legacy (non-witness) transaction from the testnet3 fixture.
	tn, err := ParseTemplate(readFixture(t, "testnet3-2442185-public-pool.json"))
	if err != nil {
		t.Fatal(err)
	}
	var legacy *Transaction
	for i := range tn.Transactions {
		if tn.Transactions[i].TxID == tn.Transactions[i].WTxID {
			legacy = &tn.Transactions[i]
			break
		}
	}
	if legacy == nil {
		t.Fatal("fixture has no legacy transaction")
	}
	raw := mutate(t, base, func(m map[string]any) {
		delete(m, "rules")
		delete(m, "default_witness_commitment")
		m["coinbaseaux"] = map[string]any{"flags": "0b2f503253482f627463642f"}
		m["transactions"] = []any{map[string]any{"data": hexs(legacy.Data), "hash": legacy.TxID.String(), "fee": 1000}}
	})
	tpl, err := ParseTemplate(raw)
	if err != nil {
		t.Fatalf("ParseTemplate: %v", err)
	}
	if tpl.Transactions[0].TxID != legacy.TxID || tpl.Transactions[0].Fee != 1000 || tpl.Transactions[0].Weight == 0 {
		t.Errorf("tx %+v", tpl.Transactions[0])
	}
	// btcd sends the bare 32-byte commitment hash.
	core, err := ParseTemplate(base)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := ParseTemplate(mutate(t, base, func(m map[string]any) {
		m["default_witness_commitment"] = hexs(core.WitnessCommitment[6:])
	}))
	if err != nil || !bytes.Equal(bare.WitnessCommitment, core.WitnessCommitment) {
		t.Fatalf("bare commitment: %v %x", err, bare.WitnessCommitment)
	}
	if hexs(tpl.CoinbaseAux) != "0b2f503253482f627463642f" || tpl.Rules != nil || tpl.WitnessCommitment != nil {
		t.Errorf("aux %x rules %v commitment %x", tpl.CoinbaseAux, tpl.Rules, tpl.WitnessCommitment)
	}
}

func FuzzParseTemplate(f *testing.F) {
	for _, fx := range gbtFixtures {
		f.Add(readFixture(f, fx.file))
	}
	f.Add([]byte(`{"version":1,"previousblockhash":"` + strings.Repeat("00", 32) + `","transactions":[],"coinbasevalue":1,"curtime":1,"bits":"207fffff","height":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		tpl, err := ParseTemplate(raw)
		if err != nil {
			if !errors.Is(err, ErrBadTemplate) {
				t.Fatalf("error not ErrBadTemplate: %v", err)
			}
			return
		}
		// Invariants of an accepted template: a positive target equal to
		// the bits, and hashes that match the data.
		if tpl.Target.Sign() <= 0 || TargetToCompact(tpl.Target) == 0 {
			t.Fatalf("accepted template with target %v", tpl.Target)
		}
		for i, tx := range tpl.Transactions {
			var msg wire.MsgTx
			if err := msg.Deserialize(bytes.NewReader(tx.Data)); err != nil || msg.TxHash() != tx.TxID || msg.WitnessHash() != tx.WTxID {
				t.Fatalf("tx %d: hashes do not match data (%v)", i, err)
			}
		}
		b, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr})
		if err != nil {
			t.Fatal(err)
		}
		job, err := b.Job(tpl, true)
		if err != nil {
			return // e.g. coinbaseaux too long for the scriptSig
		}
		if _, err := job.Block(make([]byte, 4), make([]byte, 8), [80]byte{}); err != nil {
			t.Fatalf("Block: %v", err)
		}
	})
}
