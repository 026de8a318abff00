package payment

import (
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

func TestSplitFee(t *testing.T) {
	cases := []struct {
		name    string
		amounts []int64
		fee     int64
		want    []int64
	}{
		{"zero fee", []int64{100, 200}, 0, []int64{0, 0}},
		{"exact", []int64{100, 300}, 40, []int64{10, 30}},
		// 1000 × 1/3 = 333.33 each: 333 ×3 = 999, one left for the first of
		// the (equal) largest.
		{"remainder to lowest index on ties", []int64{5, 5, 5}, 1000, []int64{334, 333, 333}},
		// floors 142, 285, 571 = 998; two left: largest (index 2) then 1.
		{"remainder to largest", []int64{1, 2, 4}, 1000, []int64{142, 286, 572}},
		{"one output", []int64{12345}, 999, []int64{999}},
		// fee × amount overflows int64 without the 128-bit product.
		{"large values", []int64{2_000_000_000_000_000, 1_000_000_000_000_000}, 9_000_000, []int64{6_000_000, 3_000_000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitFee(tc.amounts, tc.fee)
			var sum int64
			for i := range got {
				sum += got[i]
				if got[i] != tc.want[i] {
					t.Fatalf("SplitFee(%v, %d) = %v, want %v", tc.amounts, tc.fee, got, tc.want)
				}
			}
			if sum != tc.fee {
				t.Fatalf("shares sum to %d, want %d", sum, tc.fee)
			}
		})
	}
}

func FuzzSplitFee(f *testing.F) {
	f.Add(int64(1), int64(2), int64(3), int64(1000))
	f.Add(int64(5), int64(5), int64(5), int64(1))
	f.Fuzz(func(t *testing.T, a, b, c, fee int64) {
		if a < 0 || b < 0 || c < 0 || fee < 0 || a > 1<<52 || b > 1<<52 || c > 1<<52 || fee > a+b+c {
			return
		}
		amounts := []int64{a, b, c}
		got := SplitFee(amounts, fee)
		var sum int64
		for i, s := range got {
			if s < 0 || s > amounts[i] {
				t.Fatalf("share %d of %d: %d", i, amounts[i], s)
			}
			sum += s
		}
		if a+b+c > 0 && sum != fee {
			t.Fatalf("shares %v sum to %d, want %d", got, sum, fee)
		}
	})
}

func testKey() *btcec.PrivateKey {
	seed := sha256.Sum256([]byte("payment unit key"))
	k, _ := btcec.PrivKeyFromBytes(seed[:])
	return k
}

func addrOf(t *testing.T, key *btcec.PrivateKey, kind scriptKind) string {
	t.Helper()
	params := &chaincfg.RegressionNetParams
	script, err := keyScript(key, kind, params)
	if err != nil {
		t.Fatal(err)
	}
	_, addrs, _, err := txscriptExtract(script, params)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("extract: %v", err)
	}
	return addrs[0].EncodeAddress()
}

func utxo(i int, v int64) UTXO {
	return UTXO{OutPoint: wire.OutPoint{Hash: chainhash.DoubleHashH([]byte{byte(i)}), Index: uint32(i)}, Value: v}
}

// TestBuildBatchSignAndFee builds, signs and verifies a transaction for each
// pool address kind and checks the fee covers the real size at the rate.
func TestBuildBatchSignAndFee(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	key := testKey()
	other := btcec.PrivKeyFromScalar(new(btcec.ModNScalar).SetInt(7))
	for _, kind := range []scriptKind{kindP2PKH, kindP2WPKH, kindP2TR} {
		for _, payer := range []FeePayer{FeePayerPool, FeePayerMiners} {
			t.Run(kind.String()+"/"+string(payer), func(t *testing.T) {
				pool, err := poolScript(addrOf(t, key, kind), params)
				if err != nil {
					t.Fatal(err)
				}
				var outs []Output
				var scripts [][]byte
				for i, k := range []scriptKind{kindP2PKH, kindP2WPKH, kindP2TR} {
					s, _ := keyScript(other, k, params)
					outs = append(outs, Output{Address: "a" + string(rune('0'+i)), Debit: 3_000_000 + int64(i)*7})
					scripts = append(scripts, s)
				}
				utxos := []UTXO{utxo(1, 4_000_000), utxo(2, 3_000_000), utxo(3, 2_500_000)}
				const rate = 2_345
				b, err := buildBatch(outs, scripts, utxos, pool, rate, payer, 10)
				if err != nil {
					t.Fatal(err)
				}
				if len(b.inputs) != 3 {
					t.Fatalf("selected %d inputs, want 3 (largest first until covered)", len(b.inputs))
				}
				if err := signTx(b.tx, b.inputs, pool, key); err != nil {
					t.Fatal(err)
				}
				vsize := (int64(b.tx.SerializeSizeStripped())*3 + int64(b.tx.SerializeSize()) + 3) / 4
				if min := (vsize*rate + 999) / 1000; b.fee < min {
					t.Fatalf("fee %d below %d for %d vbytes at %d sat/kvB", b.fee, min, vsize, rate)
				}
				// The estimate assumes the largest signatures: at most a few
				// vbytes over per input.
				if max := ((vsize+3*2)*rate + 999) / 1000; b.fee > max {
					t.Fatalf("fee %d overestimates %d vbytes (max %d)", b.fee, vsize, max)
				}
				var in, out, debits int64
				for _, u := range b.inputs {
					in += u.Value
				}
				for _, o := range b.tx.TxOut {
					out += o.Value
				}
				for _, o := range b.outputs {
					debits += o.Debit
				}
				if in-out != b.fee {
					t.Fatalf("inputs %d - outputs %d = %d, want fee %d", in, out, in-out, b.fee)
				}
				if payer == FeePayerMiners && debits-b.fee+b.change != out {
					t.Fatalf("miners pay: outputs %d, want debits %d - fee %d + change %d", out, debits, b.fee, b.change)
				}
				if payer == FeePayerPool && debits+b.change != out {
					t.Fatalf("pool pays: outputs %d, want debits %d + change %d", out, debits, b.change)
				}
				// Tamper: a changed output no longer verifies.
				b.tx.TxOut[0].Value--
				if err := verifyTx(b.tx, b.inputs, pool.script); err == nil {
					t.Fatal("tampered transaction verified")
				}
			})
		}
	}
}

func TestBuildBatchInsufficientAndExact(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	pool, _ := poolScript(addrOf(t, testKey(), kindP2WPKH), params)
	s, _ := keyScript(testKey(), kindP2PKH, params)
	outs := []Output{{Address: "x", Debit: 1_000_000}}
	if _, err := buildBatch(outs, [][]byte{s}, []UTXO{utxo(1, 1_000_100)}, pool, 1000, FeePayerPool, 10); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("err = %v, want ErrInsufficientFunds", err)
	}
	// Change that would be dust is not created and not dropped: too little.
	if _, err := buildBatch(outs, [][]byte{s}, []UTXO{utxo(1, 1_000_500)}, pool, 1000, FeePayerMiners, 10); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("dust change: err = %v, want ErrInsufficientFunds", err)
	}
	// Miners pay and the input is exactly the debit: no change output.
	b, err := buildBatch(outs, [][]byte{s}, []UTXO{utxo(1, 1_000_000)}, pool, 1000, FeePayerMiners, 10)
	if err != nil {
		t.Fatal(err)
	}
	if b.change != 0 || len(b.tx.TxOut) != 1 || b.tx.TxOut[0].Value != 1_000_000-b.fee {
		t.Fatalf("exact spend: change %d, outputs %d", b.change, len(b.tx.TxOut))
	}
	// Max inputs bounds the selection.
	many := []UTXO{utxo(1, 400_000), utxo(2, 400_000), utxo(3, 400_000)}
	if _, err := buildBatch(outs, [][]byte{s}, many, pool, 1000, FeePayerPool, 2); !errors.Is(err, ErrInsufficientFunds) {
		t.Fatalf("max inputs: err = %v, want ErrInsufficientFunds", err)
	}
}

func TestConfigValidate(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	key := testKey()
	good := func() Config {
		return Config{Params: params, PoolAddress: addrOf(t, key, kindP2WPKH), Key: key}
	}
	cases := []struct {
		name    string
		edit    func(c *Config)
		wantErr string
	}{
		{"defaults", func(c *Config) {}, ""},
		{"cold needs no key", func(c *Config) { c.Mode, c.Key = ModeCold, nil }, ""},
		{"taproot pool", func(c *Config) { c.PoolAddress = addrOf(t, key, kindP2TR) }, ""},
		{"no params", func(c *Config) { c.Params = nil }, "params"},
		{"hot without key", func(c *Config) { c.Key = nil }, "signing key"},
		{"key of another address", func(c *Config) { c.Key = btcec.PrivKeyFromScalar(new(btcec.ModNScalar).SetInt(3)) }, "does not belong"},
		{"mainnet address on regtest", func(c *Config) { c.PoolAddress = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq" }, "not a valid"},
		{"low threshold", func(c *Config) { c.Threshold = 999 }, "threshold"},
		{"fee payer", func(c *Config) { c.FeePayer = "nobody" }, "fee payer"},
		{"floor above cap", func(c *Config) { c.FeeRateFloor, c.FeeRateCap = 5000, 1000 }, "floor"},
		{"mode", func(c *Config) { c.Mode = "warm" }, "mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.edit(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				if c.Threshold != DefaultThreshold || c.MaxOutputs != DefaultMaxOutputs || c.FeePayer != FeePayerPool {
					t.Fatalf("defaults not filled: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want an error about %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	params := &chaincfg.RegressionNetParams
	wif, err := btcutil.NewWIF(testKey(), params, true)
	if err != nil {
		t.Fatal(err)
	}
	secret := wif.String()
	mainWIF, _ := btcutil.NewWIF(testKey(), &chaincfg.MainNetParams, true)
	env := map[string]string{"GOOD": secret + "\n", "MAIN": mainWIF.String(), "BAD": "not-a-key-" + secret[:10]}
	files := map[string][]byte{"/k": []byte(secret + "\n")}
	getenv := func(k string) string { return env[k] }
	readFile := func(p string) ([]byte, error) {
		if b, ok := files[p]; ok {
			return b, nil
		}
		return nil, os.ErrNotExist
	}
	cases := []struct {
		name    string
		src     KeySource
		wantErr string
	}{
		{"env", KeySource{Env: "GOOD"}, ""},
		{"file", KeySource{File: "/k"}, ""},
		{"both", KeySource{File: "/k", Env: "GOOD"}, "not both"},
		{"none", KeySource{}, "no key"},
		{"empty env", KeySource{Env: "UNSET"}, "empty"},
		{"missing file", KeySource{File: "/nope"}, "read key file"},
		{"wrong network", KeySource{Env: "MAIN"}, "not for network"},
		{"garbage", KeySource{Env: "BAD"}, "valid WIF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := LoadKey(tc.src, params, getenv, readFile)
			if tc.wantErr == "" {
				if err != nil || !k.Key.Equals(&testKey().Key) {
					t.Fatalf("LoadKey = %v, %v", k, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadKey = %v, want error about %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), secret[:10]) {
				t.Fatalf("error leaks key material: %v", err)
			}
		})
	}
}
