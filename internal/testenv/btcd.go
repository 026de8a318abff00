package testenv

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Btcd is a btcd regtest node owned by a test. Blocks it generates pay the
// test key (Address); SendTx and SendWitnessTx spend those coinbases to put
// real transactions in the mempool.
type Btcd struct {
	RPCAddr string
	User    string
	Pass    string
	Dir     string
	Params  *chaincfg.Params

	Key            *btcec.PrivateKey
	Address        btcutil.Address // P2PKH of Key; the node's --miningaddr
	WitnessAddress btcutil.Address // P2WPKH of Key

	bin  string
	args []string
	cmd  *exec.Cmd
	t    testing.TB

	mu           sync.Mutex
	nextCoinbase int64 // next block height whose coinbase SendTx may spend
	clients      []*rpcclient.Client
}

// CoinbaseMaturity is the number of blocks after which a coinbase may be spent.
const CoinbaseMaturity = 100

// NoTxIndex, given to StartBtcd among the extra arguments, starts the node
// without --txindex (it is not passed to btcd).
const NoTxIndex = "lode:no-txindex"

// StartBtcd starts btcd in regtest on free loopback ports with --txindex
// (unless NoTxIndex is given). Extra arguments are appended to the command
// line.
func StartBtcd(t testing.TB, extra ...string) *Btcd {
	t.Helper()
	bin := Binary(t, "btcd", "run `make test` (it installs btcd into ./bin) or `GOBIN=$PWD/bin go install github.com/btcsuite/btcd@v0.24.2`")
	seed := sha256.Sum256([]byte("lode test key"))
	key, pub := btcec.PrivKeyFromBytes(seed[:])
	params := &chaincfg.RegressionNetParams
	pkh := btcutil.Hash160(pub.SerializeCompressed())
	p2pkh, err := btcutil.NewAddressPubKeyHash(pkh, params)
	if err != nil {
		t.Fatalf("testenv: address: %v", err)
	}
	p2wpkh, err := btcutil.NewAddressWitnessPubKeyHash(pkh, params)
	if err != nil {
		t.Fatalf("testenv: address: %v", err)
	}
	b := &Btcd{
		User:           "lode",
		Pass:           "lodepass",
		Dir:            t.TempDir(),
		Params:         params,
		Key:            key,
		Address:        p2pkh,
		WitnessAddress: p2wpkh,
		bin:            bin,
		t:              t,
		nextCoinbase:   1,
	}
	txindex := []string{"--txindex"}
	var rest []string
	for _, a := range extra {
		if a == NoTxIndex {
			txindex = nil
		} else {
			rest = append(rest, a)
		}
	}
	// A port found free can be taken by another test's server before btcd
	// binds it; then btcd exits at once and is started on new ports.
	for attempt := 1; ; attempt++ {
		b.RPCAddr = addr(FreePort(t))
		b.args = append(append(append([]string(nil), txindex...),
			"--regtest", "--notls", "--nobanning",
			"--datadir="+filepath.Join(b.Dir, "data"),
			"--logdir="+filepath.Join(b.Dir, "logs"),
			"--rpclisten="+b.RPCAddr,
			"--rpcuser="+b.User, "--rpcpass="+b.Pass,
			"--listen="+addr(FreePort(t)),
			"--miningaddr="+p2pkh.EncodeAddress(),
			"--debuglevel=warn",
		), rest...)
		err := b.start()
		if err == nil {
			break
		}
		b.Stop()
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("testenv: %v", err)
		}
	}
	t.Cleanup(b.Stop)
	return b
}

func (b *Btcd) start() error {
	b.cmd = exec.Command(b.bin, b.args...)
	logPath := filepath.Join(b.Dir, "btcd.out")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	if err := b.cmd.Start(); err != nil {
		return fmt.Errorf("start btcd: %w", err)
	}
	c := b.Client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.GetBlockCount()
		if err == nil {
			return nil
		}
		out, _ := os.ReadFile(logPath)
		if bytes.Contains(out, []byte("address already in use")) || time.Now().After(deadline) {
			return fmt.Errorf("btcd RPC on %s not ready: %v\n%s", b.RPCAddr, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills btcd (SIGKILL) and waits for it. Safe to call twice.
func (b *Btcd) Stop() {
	b.mu.Lock()
	for _, c := range b.clients {
		c.Shutdown()
	}
	b.clients = nil
	b.mu.Unlock()
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	_, _ = b.cmd.Process.Wait()
	b.cmd = nil
}

// Restart restarts btcd on the same datadir and ports; the chain is kept.
func (b *Btcd) Restart() {
	b.t.Helper()
	b.Stop()
	if err := b.start(); err != nil {
		b.t.Fatalf("testenv: restart: %v", err)
	}
}

// RPCURL returns the node's RPC URL, e.g. http://127.0.0.1:18334.
func (b *Btcd) RPCURL() string { return "http://" + b.RPCAddr }

// Client returns a new rpcclient in HTTP POST mode; it is shut down when the
// node stops.
func (b *Btcd) Client() *rpcclient.Client {
	b.t.Helper()
	c, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: b.RPCAddr, User: b.User, Pass: b.Pass,
		HTTPPostMode: true, DisableTLS: true,
	}, nil)
	if err != nil {
		b.t.Fatalf("testenv: rpc client: %v", err)
	}
	b.mu.Lock()
	b.clients = append(b.clients, c)
	b.mu.Unlock()
	return c
}

// Generate mines n blocks paying Address and returns their hashes.
func (b *Btcd) Generate(n uint32) []*chainhash.Hash {
	b.t.Helper()
	hashes, err := b.Client().Generate(n)
	if err != nil {
		b.t.Fatalf("testenv: generate %d: %v", n, err)
	}
	return hashes
}

// Height returns the node's block count.
func (b *Btcd) Height() int64 {
	b.t.Helper()
	h, err := b.Client().GetBlockCount()
	if err != nil {
		b.t.Fatalf("testenv: getblockcount: %v", err)
	}
	return h
}

// SendTx spends the next mature coinbase paid to Address into outputs (the
// remainder minus a 10000 sat fee returns to Address), broadcasts it, and
// returns it. It mines blocks first when no coinbase is mature yet.
func (b *Btcd) SendTx(outputs ...*wire.TxOut) *wire.MsgTx {
	b.t.Helper()
	c := b.Client()
	b.mu.Lock()
	h := b.nextCoinbase
	b.nextCoinbase++
	b.mu.Unlock()
	if tip := b.Height(); tip < h+CoinbaseMaturity {
		b.Generate(uint32(h + CoinbaseMaturity - tip))
	}
	hash, err := c.GetBlockHash(h)
	if err != nil {
		b.t.Fatalf("testenv: getblockhash %d: %v", h, err)
	}
	blk, err := c.GetBlock(hash)
	if err != nil {
		b.t.Fatalf("testenv: getblock %s: %v", hash, err)
	}
	cb := blk.Transactions[0]
	prev := cb.TxOut[0]
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(cb.TxHash()), 0), nil, nil))
	var spent int64
	for _, o := range outputs {
		tx.AddTxOut(o)
		spent += o.Value
	}
	const fee = 10000
	if change := prev.Value - spent - fee; change > 0 {
		script, _ := txscript.PayToAddrScript(b.Address)
		tx.AddTxOut(wire.NewTxOut(change, script))
	} else if change < 0 {
		b.t.Fatalf("testenv: coinbase of %d sat cannot pay %d + fee", prev.Value, spent)
	}
	sig, err := txscript.SignatureScript(tx, 0, prev.PkScript, txscript.SigHashAll, b.Key, true)
	if err != nil {
		b.t.Fatalf("testenv: sign: %v", err)
	}
	tx.TxIn[0].SignatureScript = sig
	if _, err := c.SendRawTransaction(tx, true); err != nil {
		b.t.Fatalf("testenv: sendrawtransaction: %v", err)
	}
	return tx
}

// SendWitnessTx puts a transaction with witness data in the mempool: it pays
// a coinbase to WitnessAddress (SendTx) and spends that P2WPKH output back
// to Address. Both transactions are returned; the second has a witness.
func (b *Btcd) SendWitnessTx() (funding, witness *wire.MsgTx) {
	b.t.Helper()
	b.ActivateSegwit()
	script, _ := txscript.PayToAddrScript(b.WitnessAddress)
	const amount = 10 * btcutil.SatoshiPerBitcoin
	funding = b.SendTx(wire.NewTxOut(amount, script))
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(funding.TxHash()), 0), nil, nil))
	back, _ := txscript.PayToAddrScript(b.Address)
	tx.AddTxOut(wire.NewTxOut(amount-10000, back))
	fetcher := txscript.NewCannedPrevOutputFetcher(script, amount)
	sighashes := txscript.NewTxSigHashes(tx, fetcher)
	wit, err := txscript.WitnessSignature(tx, sighashes, 0, amount, script, txscript.SigHashAll, b.Key, true)
	if err != nil {
		b.t.Fatalf("testenv: witness sign: %v", err)
	}
	tx.TxIn[0].Witness = wit
	if _, err := b.Client().SendRawTransaction(tx, true); err != nil {
		b.t.Fatalf("testenv: sendrawtransaction (witness): %v", err)
	}
	return funding, tx
}

// ActivateSegwit mines blocks until the segwit deployment is active (on
// regtest that takes 432 blocks from genesis).
func (b *Btcd) ActivateSegwit() {
	b.t.Helper()
	c := b.Client()
	for i := 0; i < 10; i++ {
		info, err := c.GetBlockChainInfo()
		if err != nil {
			b.t.Fatalf("testenv: getblockchaininfo: %v", err)
		}
		if info.SoftForks != nil {
			if fork, ok := info.SoftForks.Bip9SoftForks["segwit"]; ok && fork.Status == "active" {
				return
			}
		}
		if info.UnifiedSoftForks != nil {
			if fork, ok := info.UnifiedSoftForks.SoftForks["segwit"]; ok && fork.BIP9SoftForkDescription != nil && fork.BIP9SoftForkDescription.Status == "active" {
				return
			}
		}
		b.Generate(144)
	}
	b.t.Fatal("testenv: segwit did not activate")
}

func ptr[T any](v T) *T { return &v }

// String describes the node for test logs.
func (b *Btcd) String() string { return fmt.Sprintf("btcd regtest at %s (dir %s)", b.RPCAddr, b.Dir) }
