package blocktemplate

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/schnorr"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

var update = flag.Bool("update", false, "rewrite golden files")

func hexs(b []byte) string { return hex.EncodeToString(b) }

func regtestParams() *chaincfg.Params { return &chaincfg.RegressionNetParams }

// regtestAddr is a P2WPKH regtest address (hash160 of 20 bytes of 0x01).
var regtestAddr = func() string {
	a, _ := btcutil.NewAddressWitnessPubKeyHash(bytes.Repeat([]byte{1}, 20), regtestParams())
	return a.EncodeAddress()
}()

// addressesFor returns one address of each supported type for a network.
func addressesFor(t testing.TB, net *chaincfg.Params) map[string]string {
	t.Helper()
	h20 := bytes.Repeat([]byte{0x42}, 20)
	h32 := bytes.Repeat([]byte{0x43}, 32)
	_, pub := btcec.PrivKeyFromBytes(bytes.Repeat([]byte{0x07}, 32))
	var out = map[string]string{}
	add := func(name string, a btcutil.Address, err error) {
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = a.EncodeAddress()
	}
	a1, err := btcutil.NewAddressPubKeyHash(h20, net)
	add("p2pkh", a1, err)
	a2, err := btcutil.NewAddressScriptHashFromHash(h20, net)
	add("p2sh", a2, err)
	a3, err := btcutil.NewAddressWitnessPubKeyHash(h20, net)
	add("p2wpkh", a3, err)
	a4, err := btcutil.NewAddressWitnessScriptHash(h32, net)
	add("p2wsh", a4, err)
	a5, err := btcutil.NewAddressTaproot(schnorr.SerializePubKey(pub), net)
	add("p2tr", a5, err)
	return out
}

func TestHeightPushVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.BIP34 {
		if got := hexs(HeightPush(tc.Height)); got != tc.ScriptHex {
			t.Errorf("HeightPush(%d) = %s, want %s", tc.Height, got, tc.ScriptHex)
		}
	}
	// Heights 1–16 are OP_1..OP_16, as Core's CScript() << n encodes them.
	for h := int64(1); h <= 16; h++ {
		want, _ := txscript.NewScriptBuilder().AddInt64(h).Script()
		if got := HeightPush(h); !bytes.Equal(got, want) {
			t.Errorf("HeightPush(%d) = %x, want %x", h, got, want)
		}
	}
	// Cross-check against btcd's script builder over a range of heights.
	for _, h := range []int64{17, 127, 128, 255, 256, 32767, 32768, 65535, 8388607, 8388608, 1 << 30, 1<<31 - 1} {
		want, _ := txscript.NewScriptBuilder().AddInt64(h).Script()
		if got := HeightPush(h); !bytes.Equal(got, want) {
			t.Errorf("HeightPush(%d) = %x, want %x", h, got, want)
		}
		if len(HeightPush(h)) > maxHeightPushSize {
			t.Errorf("HeightPush(%d) longer than %d", h, maxHeightPushSize)
		}
	}
}

func TestMerkleBranchVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Merkle {
		t.Run(tc.Name, func(t *testing.T) {
			txids := make([]chainhash.Hash, len(tc.TxIDs))
			for i, s := range tc.TxIDs {
				h, err := chainhash.NewHashFromStr(s)
				if err != nil {
					t.Fatal(err)
				}
				txids[i] = *h
			}
			branch := MerkleBranch(txids)
			if len(branch) != len(tc.ExpectedBranch) {
				t.Fatalf("branch length %d, want %d", len(branch), len(tc.ExpectedBranch))
			}
			for i := range branch {
				if got := hexs(branch[i][:]); got != tc.ExpectedBranch[i] {
					t.Errorf("branch[%d] = %s, want %s", i, got, tc.ExpectedBranch[i])
				}
			}
			cb, _ := chainhash.NewHashFromStr(tc.CoinbaseTxID)
			if got := FoldBranch(*cb, branch); got.String() != tc.ExpectedRoot {
				t.Errorf("root %s, want %s", got, tc.ExpectedRoot)
			}
			if got := MerkleRoot(append([]chainhash.Hash{*cb}, txids...)); got.String() != tc.ExpectedRoot {
				t.Errorf("MerkleRoot %s, want %s", got, tc.ExpectedRoot)
			}
		})
	}
	if MerkleBranch(nil) != nil {
		t.Error("branch of a coinbase-only block is not empty")
	}
}

func TestConfigValidate(t *testing.T) {
	nets := []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.SigNetParams, &chaincfg.RegressionNetParams}
	for _, net := range nets {
		for kind, addr := range addressesFor(t, net) {
			t.Run(net.Name+"/"+kind, func(t *testing.T) {
				b, err := NewBuilder(Config{Network: net, PayoutAddress: addr, PoolTag: "/lode/"})
				if err != nil {
					t.Fatalf("NewBuilder: %v", err)
				}
				a, _ := btcutil.DecodeAddress(addr, net)
				want, _ := txscript.PayToAddrScript(a)
				if !bytes.Equal(b.PayoutScript(), want) {
					t.Errorf("payout script %x, want %x", b.PayoutScript(), want)
				}
				c := b.Config()
				if c.Extranonce1Size != 4 || c.Extranonce2Size != 8 || c.VersionMask != 0x1fffe000 {
					t.Errorf("defaults not applied: %+v", c)
				}
			})
		}
	}
	mainP2PKH := addressesFor(t, &chaincfg.MainNetParams)["p2pkh"]
	bad := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no network", Config{PayoutAddress: regtestAddr}, "network"},
		{"no address", Config{Network: regtestParams()}, "payout address is required"},
		{"garbage address", Config{Network: regtestParams(), PayoutAddress: "notanaddress"}, "decode payout address"},
		{"mainnet address on regtest", Config{Network: regtestParams(), PayoutAddress: mainP2PKH}, "payout address"},
		{"extranonce1 too big", Config{Network: regtestParams(), PayoutAddress: regtestAddr, Extranonce1Size: 17}, "extranonce1"},
		{"extranonce2 negative", Config{Network: regtestParams(), PayoutAddress: regtestAddr, Extranonce2Size: -1}, "extranonce2"},
		{"tag too long", Config{Network: regtestParams(), PayoutAddress: regtestAddr, PoolTag: strings.Repeat("x", 81)}, "scriptSig would be"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want error containing %q", err, tc.want)
			}
			if _, err := NewBuilder(tc.cfg); err == nil {
				t.Fatal("NewBuilder accepted a bad config")
			}
		})
	}
	// The longest tag that fits: 5 (height) + 1+12 (slot) + 2+80 = 100.
	ok := Config{Network: regtestParams(), PayoutAddress: regtestAddr, PoolTag: strings.Repeat("x", 80)}
	if err := ok.Validate(); err != nil {
		t.Errorf("80-byte tag: %v", err)
	}
}

// checkJob decodes the job's coinbase and checks its structure against the
// template and config.
func checkJob(t *testing.T, b *Builder, tpl *Template, job *Job) *wire.MsgTx {
	t.Helper()
	en1 := bytes.Repeat([]byte{0xaa}, job.Extranonce1Size)
	en2 := bytes.Repeat([]byte{0xbb}, job.Extranonce2Size)
	cbBytes, err := job.Coinbase(en1, en2)
	if err != nil {
		t.Fatal(err)
	}
	cb := new(wire.MsgTx)
	rd := bytes.NewReader(cbBytes)
	if err := cb.DeserializeNoWitness(rd); err != nil || rd.Len() != 0 {
		t.Fatalf("coinbase does not decode: %v (%d left)", err, rd.Len())
	}
	if !blockchainIsCoinbase(cb) {
		t.Fatal("not a coinbase")
	}
	sig := cb.TxIn[0].SignatureScript
	height := HeightPush(tpl.Height)
	if !bytes.HasPrefix(sig, height) || len(sig) > 100 || len(sig) < 2 {
		t.Errorf("scriptSig %x: want BIP34 prefix %x and 2..100 bytes", sig, height)
	}
	slot := append(append([]byte{}, en1...), en2...)
	if !bytes.Contains(sig, slot) || !bytes.Contains(sig, []byte(b.Config().PoolTag)) {
		t.Errorf("scriptSig %x lacks the extranonce slot or tag", sig)
	}
	// The scriptSig must parse as pushes so script tools can read it.
	if _, err := txscript.PushedData(sig); err != nil {
		t.Errorf("scriptSig %x is not push-only: %v", sig, err)
	}
	if cb.TxOut[0].Value != tpl.CoinbaseValue || !bytes.Equal(cb.TxOut[0].PkScript, b.PayoutScript()) {
		t.Errorf("payout output %d %x", cb.TxOut[0].Value, cb.TxOut[0].PkScript)
	}
	if tpl.WitnessCommitment != nil {
		last := cb.TxOut[len(cb.TxOut)-1]
		if len(cb.TxOut) != 2 || last.Value != 0 || !bytes.Equal(last.PkScript, tpl.WitnessCommitment) {
			t.Errorf("witness commitment output %+v", last)
		}
	} else if len(cb.TxOut) != 1 {
		t.Errorf("%d outputs without commitment", len(cb.TxOut))
	}
	// Branch folded from this coinbase equals the merkle root of the block.
	leaves := []chainhash.Hash{cb.TxHash()}
	for _, tx := range tpl.Transactions {
		leaves = append(leaves, tx.TxID)
	}
	if FoldBranch(cb.TxHash(), job.MerkleBranch) != MerkleRoot(leaves) {
		t.Error("folded branch does not give the merkle root")
	}
	if job.Version&b.Config().VersionMask != 0 || job.Version != tpl.Version&^b.Config().VersionMask {
		t.Errorf("version %08x from %08x", job.Version, tpl.Version)
	}
	if job.Bits != tpl.Bits || job.NTime != uint32(tpl.CurTime) || job.NetworkTarget.Cmp(tpl.Target) != 0 || job.CreatedAt.IsZero() {
		t.Errorf("job fields %+v", job)
	}
	return cb
}

func blockchainIsCoinbase(tx *wire.MsgTx) bool {
	return len(tx.TxIn) == 1 && tx.TxIn[0].PreviousOutPoint.Index == 0xffffffff && tx.TxIn[0].PreviousOutPoint.Hash == chainhash.Hash{}
}

// TestJobGolden builds jobs from the Core fixtures and compares their
// notify params with golden files (regenerate with -update).
func TestJobGolden(t *testing.T) {
	nets := map[string]*chaincfg.Params{"regtest": &chaincfg.RegressionNetParams, "signet": &chaincfg.SigNetParams, "testnet3": &chaincfg.TestNet3Params}
	for _, fx := range gbtFixtures {
		t.Run(fx.file, func(t *testing.T) {
			net := nets[strings.SplitN(fx.file, "-", 2)[0]]
			tpl, err := ParseTemplate(readFixture(t, fx.file))
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewBuilder(Config{Network: net, PayoutAddress: addressesFor(t, net)["p2wpkh"], PoolTag: "/lode/"})
			if err != nil {
				t.Fatal(err)
			}
			job, err := b.Job(tpl, true)
			if err != nil {
				t.Fatal(err)
			}
			checkJob(t, b, tpl, job)
			n := job.Notify()
			n.JobID = "golden" // ids are per process
			got, _ := json.MarshalIndent(n.Params(), "", "  ")
			golden := filepath.Join("testdata", strings.TrimSuffix(fx.file, ".json")+".notify.golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(want) != string(got)+"\n" {
				t.Errorf("notify differs from %s:\n%s", golden, got)
			}
		})
	}
}

func TestJobIDsUniqueAndCoinbaseAux(t *testing.T) {
	tpl, err := ParseTemplate(readFixture(t, "regtest-506-p2poolv2.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr, Extranonce1Size: 2, Extranonce2Size: 4, PoolTag: "/t/"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		j, err := b.Job(tpl, false)
		if err != nil {
			t.Fatal(err)
		}
		if seen[j.ID] {
			t.Fatalf("duplicate job id %s", j.ID)
		}
		seen[j.ID] = true
	}
	aux := *tpl
	aux.CoinbaseAux = []byte{0x01, 0x02}
	j, err := b.Job(&aux, true)
	if err != nil {
		t.Fatal(err)
	}
	cb := checkJob(t, b, &aux, j)
	sig := cb.TxIn[0].SignatureScript
	if !bytes.HasPrefix(sig[len(HeightPush(aux.Height)):], aux.CoinbaseAux) {
		t.Errorf("coinbaseaux not after the height: %x", sig)
	}
	// Heights 1–16 use one opcode (regtest starts there).
	for _, h := range []int64{1, 16, 17} {
		low := *tpl
		low.Height = h
		j, err := b.Job(&low, true)
		if err != nil {
			t.Fatal(err)
		}
		checkJob(t, b, &low, j)
	}
	long := *tpl
	long.CoinbaseAux = bytes.Repeat([]byte{1}, 90)
	if _, err := b.Job(&long, true); err == nil || !strings.Contains(err.Error(), "scriptSig") {
		t.Errorf("long coinbaseaux: %v", err)
	}
	if _, err := b.Job(nil, true); err == nil {
		t.Error("nil template accepted")
	}
}
