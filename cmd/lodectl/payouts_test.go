package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts/payment"
)

// TestPayoutsColdRoundTrip drives the operator's cold-signing workflow
// through lodectl against real redis-server and a regtest node, btcd and
// Bitcoin Core: threshold, dry run, run (PSBT written), offline signing,
// broadcast, confirmation, list, show.
func TestPayoutsColdRoundTrip(t *testing.T) {
	testenv.ForEachNode(t, testPayoutsColdRoundTrip)
}

// nodeFlagsFor are lodectl's flags to reach node: user and password (in
// LODE_RPC_PASSWORD) or Core's cookie file.
func nodeFlagsFor(t *testing.T, node testenv.Node) []string {
	user, pass, cookie := node.RPCAuth()
	if cookie != "" {
		return []string{"-rpc", node.RPCURL(), "-rpc-cookie", cookie}
	}
	t.Setenv("LODE_RPC_PASSWORD", pass)
	return []string{"-rpc", node.RPCURL(), "-rpc-user", user}
}

func testPayoutsColdRoundTrip(t *testing.T, node testenv.Node) {
	srv := testenv.StartRedis(t)
	ctx := context.Background()
	s, err := redisstore.Connect(ctx, redisstore.ConnectConfig{Addr: srv.Addr, Prefix: "ctlpay"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Client().Close()
	rpc := node.Client()

	// Two matured coinbases paying the pool (testenv's key, P2PKH).
	var total int64
	for _, h := range node.Generate(2) {
		blk, err := rpc.GetBlock(h)
		if err != nil {
			t.Fatal(err)
		}
		cb := blk.Transactions[0]
		op := wire.OutPoint{Hash: cb.TxHash(), Index: 0}
		s.Client().HSet(ctx, s.UTXOsKey(), op.String(), cb.TxOut[0].Value)
		total += cb.TxOut[0].Value
	}
	node.Generate(testenv.CoinbaseMaturity)
	var addrs []string
	want := map[string]int64{}
	for i := 0; i < 3; i++ {
		seed := sha256.Sum256([]byte(fmt.Sprintf("lodectl recipient %d", i)))
		a, _ := btcutil.NewAddressWitnessPubKeyHash(seed[:20], node.Chain())
		addrs = append(addrs, a.EncodeAddress())
		want[a.EncodeAddress()] = int64(10_000_000 * (i + 1))
		s.Client().HSet(ctx, s.BalancesKey(), a.EncodeAddress(), want[a.EncodeAddress()])
	}
	s.Client().Set(ctx, s.FeeBalanceKey(), 1_000_000, 0)

	common := []string{"-redis", srv.Addr, "-prefix", "ctlpay"}
	nodeArgs := append(append(append([]string{}, common...), "-network", "regtest"), nodeFlagsFor(t, node)...)
	nodeArgs = append(nodeArgs, "-pool-address", node.MiningAddress().EncodeAddress(), "-signing", "cold")

	// The third address waits for a higher threshold.
	if out, errs, code := runCtl(t, append(append([]string{"payouts", "threshold"}, common...), "-network", "regtest", addrs[2], "40000000")...); code != 0 {
		t.Fatalf("threshold: %d %s %s", code, out, errs)
	}
	if _, errs, code := runCtl(t, append(append([]string{"payouts", "threshold"}, common...), "-network", "regtest", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "40000000")...); code != 1 || !strings.Contains(errs, "not a regtest address") {
		t.Fatalf("threshold for a mainnet address: %d %s", code, errs)
	}
	out, errs, code := runCtl(t, append([]string{"payouts", "run", "-dry-run"}, nodeArgs...)...)
	if code != 0 || !strings.Contains(out, "would pay 0.30000000 BTC to 2 addresses") {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, errs)
	}
	dir := t.TempDir()
	out, errs, code = runCtl(t, append([]string{"payouts", "run", "-psbt-dir", dir}, nodeArgs...)...)
	if code != 0 || !strings.Contains(out, "state unsigned") {
		t.Fatalf("run: %d\n%s\n%s", code, out, errs)
	}
	file := filepath.Join(dir, "payout-1.psbt")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	packet, err := payment.ReadPSBT(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	signP2PKH(t, packet, node.TestKey())
	signed := filepath.Join(dir, "payout-1.signed.psbt")
	b64, err := packet.B64Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(signed, []byte(b64), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, code = runCtl(t, append(append([]string{"payouts", "broadcast"}, nodeArgs...), signed)...)
	if code != 0 || !strings.Contains(out, "payout 1: broadcast") {
		t.Fatalf("broadcast: %d\n%s\n%s", code, out, errs)
	}
	out, errs, code = runCtl(t, append(append([]string{"payouts", "abandon"}, nodeArgs...), "1")...)
	if code != 1 || !strings.Contains(errs, "may still confirm") {
		t.Fatalf("abandon of a broadcast payout: %d\n%s\n%s", code, out, errs)
	}
	node.Generate(1)
	out, errs, code = runCtl(t, append([]string{"payouts", "run"}, nodeArgs...)...)
	if code != 0 || !strings.Contains(out, "earlier payout 1 is now confirmed") || !strings.Contains(out, "0 payout(s) open") {
		t.Fatalf("run after a block: %d\n%s\n%s", code, out, errs)
	}
	out, _, code = runCtl(t, append([]string{"payouts", "list"}, common...)...)
	if code != 0 || !strings.Contains(out, "confirmed") || !strings.Contains(out, "total: 1 payouts, 0.30000000 BTC paid") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	out, _, code = runCtl(t, append(append([]string{"payouts", "show"}, common...), "1")...)
	if code != 0 || !strings.Contains(out, "payout 1: confirmed") || !strings.Contains(out, addrs[1]) {
		t.Fatalf("show: %d\n%s", code, out)
	}
	po, err := s.Payout(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := rpc.GetRawTransaction(mustTxid(t, po.TxID))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, o := range tx.MsgTx().TxOut {
		_, as, _, _ := txscript.ExtractPkScriptAddrs(o.PkScript, node.Chain())
		got[as[0].EncodeAddress()] += o.Value
	}
	if got[addrs[0]] != want[addrs[0]] || got[addrs[1]] != want[addrs[1]] || got[addrs[2]] != 0 {
		t.Fatalf("on chain: %v, want %v (third below its threshold)", got, want)
	}
	if _, errs, code := runCtl(t, append([]string{"payouts", "bogus"}, common...)...); code != 2 || !strings.Contains(errs, "unknown subcommand") {
		t.Fatalf("bogus subcommand: %d %s", code, errs)
	}
}

func signP2PKH(t *testing.T, packet *psbt.Packet, key *btcec.PrivateKey) {
	t.Helper()
	u, err := psbt.NewUpdater(packet)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range packet.Inputs {
		prev := in.NonWitnessUtxo.TxOut[packet.UnsignedTx.TxIn[i].PreviousOutPoint.Index]
		sig, err := txscript.RawTxInSignature(packet.UnsignedTx, i, prev.PkScript, txscript.SigHashAll, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := u.Sign(i, sig, key.PubKey().SerializeCompressed(), nil, nil); err != nil {
			t.Fatal(err)
		}
	}
}

func mustTxid(t *testing.T, s string) *chainhash.Hash {
	t.Helper()
	h, err := chainhash.NewHashFromStr(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
