package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// Node kinds, as NodeKinds lists them and StartNode takes them.
const (
	KindBtcd = "btcd"
	KindCore = "core"
)

// NodeKinds are the node implementations every node-facing test runs
// against: btcd and Bitcoin Core.
var NodeKinds = []string{KindBtcd, KindCore}

// Node is a regtest node owned by a test, btcd or Bitcoin Core, so a test is
// written once and run over NodeKinds. Blocks it generates pay the test key
// (MiningAddress); SendTx spends those coinbases. Methods fail the test they
// are bound to (the one that started the node, or the one given to For).
type Node interface {
	// Kind is KindBtcd or KindCore.
	Kind() string
	// RPCURL is http://host:port of the RPC server.
	RPCURL() string
	// RPCAuth returns rpcuser/rpcpassword, or the cookie file to read them
	// from (Core: DIR/regtest/.cookie, rewritten on every start).
	RPCAuth() (user, pass, cookieFile string)
	// ZMQHashBlock is the ZMQ hashblock endpoint (tcp://…), "" if the node
	// has none (btcd).
	ZMQHashBlock() string
	// Chain returns the network parameters (regtest).
	Chain() *chaincfg.Params
	// TestKey is the private key MiningAddress and the witness address of
	// SendWitnessTx belong to.
	TestKey() *btcec.PrivateKey
	// MiningAddress is the P2PKH address of TestKey that Generate pays.
	MiningAddress() btcutil.Address

	// Client returns an rpcclient (HTTP POST mode) shut down when the node
	// stops.
	Client() *rpcclient.Client
	// Generate mines n blocks paying MiningAddress and returns their hashes.
	Generate(n uint32) []*chainhash.Hash
	// Height returns the node's block count.
	Height() int64
	// SendTx spends the next mature coinbase into outputs (the rest minus
	// a 10000 sat fee returns to MiningAddress) and broadcasts it.
	SendTx(outputs ...*wire.TxOut) *wire.MsgTx
	// SendWitnessTx puts a P2WPKH spend (with a witness) in the mempool;
	// funding is the transaction it spends.
	SendWitnessTx() (funding, witness *wire.MsgTx)
	// ActivateSegwit mines until segwit is active (btcd's regtest needs
	// 432 blocks; Core's has it from genesis).
	ActivateSegwit()
	// InvalidateBlock marks a block invalid so the chain reorganises
	// around it (orphaning it and its descendants).
	InvalidateBlock(hash chainhash.Hash)
	// Stop stops the node; Restart starts it again on the same data and
	// ports. Core keeps its chain and writes a new cookie; btcd deletes its
	// regtest chain on start and comes back at height 0.
	Stop()
	Restart()
	// For returns the same node bound to t: its methods fail t.
	For(t testing.TB) Node
}

// StartNode starts a regtest node of the given kind (KindBtcd or KindCore),
// stopped when t ends. NoTxIndex among extra starts it without a
// transaction index; other extra arguments go to the node's command line.
func StartNode(t testing.TB, kind string, extra ...string) Node {
	t.Helper()
	switch kind {
	case KindBtcd:
		return StartBtcd(t, extra...)
	case KindCore:
		return StartBitcoind(t, extra...)
	}
	t.Fatalf("testenv: unknown node kind %q", kind)
	return nil
}

// ForEachNode runs fn as a subtest for every kind of NodeKinds, each with
// its own node started by StartNode.
func ForEachNode(t *testing.T, fn func(t *testing.T, node Node), extra ...string) {
	t.Helper()
	for _, kind := range NodeKinds {
		t.Run(kind, func(t *testing.T) {
			fn(t, StartNode(t, kind, extra...))
		})
	}
}

// testKey derives the fixed test key and its P2PKH and P2WPKH addresses.
func testKey(t testing.TB) (*btcec.PrivateKey, btcutil.Address, btcutil.Address) {
	t.Helper()
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
	return key, p2pkh, p2wpkh
}

// coinbases hands out the heights of the coinbases SendTx spends, one each,
// shared by every binding of a node.
type coinbases struct {
	mu   sync.Mutex
	next int64
}

func (c *coinbases) take() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next == 0 {
		c.next = 1
	}
	h := c.next
	c.next++
	return h
}

// sendTx is SendTx for any node: it spends the coinbase of the block at the
// next height the node hands out (mining first until it is mature).
func sendTx(t testing.TB, n Node, cbs *coinbases, outputs ...*wire.TxOut) *wire.MsgTx {
	t.Helper()
	c := n.Client()
	ours, _ := txscript.PayToAddrScript(n.MiningAddress())
	var cb *wire.MsgTx
	// Blocks a test mined itself (a pool's job) pay someone else: skip them.
	for cb == nil {
		h := cbs.take()
		if tip := n.Height(); tip < h+CoinbaseMaturity {
			n.Generate(uint32(h + CoinbaseMaturity - tip))
		}
		hash, err := c.GetBlockHash(h)
		if err != nil {
			t.Fatalf("testenv: getblockhash %d: %v", h, err)
		}
		blk, err := c.GetBlock(hash)
		if err != nil {
			t.Fatalf("testenv: getblock %s: %v", hash, err)
		}
		if first := blk.Transactions[0]; bytes.Equal(first.TxOut[0].PkScript, ours) {
			cb = first
		}
	}
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
		script, _ := txscript.PayToAddrScript(n.MiningAddress())
		tx.AddTxOut(wire.NewTxOut(change, script))
	} else if change < 0 {
		t.Fatalf("testenv: coinbase of %d sat cannot pay %d + fee", prev.Value, spent)
	}
	sig, err := txscript.SignatureScript(tx, 0, prev.PkScript, txscript.SigHashAll, n.TestKey(), true)
	if err != nil {
		t.Fatalf("testenv: sign: %v", err)
	}
	tx.TxIn[0].SignatureScript = sig
	if err := sendRaw(c, tx); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return tx
}

// sendWitnessTx is SendWitnessTx for any node: it pays a coinbase to the
// test key's P2WPKH address and spends that output back to MiningAddress.
func sendWitnessTx(t testing.TB, n Node, cbs *coinbases, witnessAddr btcutil.Address) (funding, witness *wire.MsgTx) {
	t.Helper()
	script, _ := txscript.PayToAddrScript(witnessAddr)
	const amount = 10 * btcutil.SatoshiPerBitcoin
	funding = sendTx(t, n, cbs, wire.NewTxOut(amount, script))
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxIn(wire.NewTxIn(wire.NewOutPoint(ptr(funding.TxHash()), 0), nil, nil))
	back, _ := txscript.PayToAddrScript(n.MiningAddress())
	tx.AddTxOut(wire.NewTxOut(amount-10000, back))
	fetcher := txscript.NewCannedPrevOutputFetcher(script, amount)
	sighashes := txscript.NewTxSigHashes(tx, fetcher)
	wit, err := txscript.WitnessSignature(tx, sighashes, 0, amount, script, txscript.SigHashAll, n.TestKey(), true)
	if err != nil {
		t.Fatalf("testenv: witness sign: %v", err)
	}
	tx.TxIn[0].Witness = wit
	if err := sendRaw(n.Client(), tx); err != nil {
		t.Fatalf("testenv: witness: %v", err)
	}
	return funding, tx
}

// sendRaw broadcasts tx with a plain sendrawtransaction, which both nodes
// answer the same way (rpcclient's SendRawTransaction first probes the
// node's version).
func sendRaw(c *rpcclient.Client, tx *wire.MsgTx) error {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return fmt.Errorf("serialize tx: %w", err)
	}
	param, _ := json.Marshal(hex.EncodeToString(buf.Bytes()))
	if _, err := c.RawRequest("sendrawtransaction", []json.RawMessage{param}); err != nil {
		return fmt.Errorf("sendrawtransaction %s: %w", tx.TxHash(), err)
	}
	return nil
}

// invalidateBlock calls invalidateblock, which btcd and Core both have.
func invalidateBlock(t testing.TB, c *rpcclient.Client, hash chainhash.Hash) {
	t.Helper()
	param, _ := json.Marshal(hash.String())
	if _, err := c.RawRequest("invalidateblock", []json.RawMessage{param}); err != nil {
		t.Fatalf("testenv: invalidateblock %s: %v", hash, err)
	}
}

func ptr[T any](v T) *T { return &v }

// splitTxIndex takes NoTxIndex out of a node's extra arguments: it returns
// the node's txindex flag (nil when NoTxIndex was given) and the rest.
func splitTxIndex(extra []string, flag string) (txindex, rest []string) {
	txindex = []string{flag}
	for _, a := range extra {
		if a == NoTxIndex {
			txindex = nil
		} else {
			rest = append(rest, a)
		}
	}
	return txindex, rest
}

// startOnFreePorts runs start, which picks free ports and starts a node on
// them, up to three times while it fails because another test took a port
// between the check and the node's bind (taken); stop cleans up a failed
// attempt.
func startOnFreePorts(t testing.TB, start func() error, taken func(error) bool, stop func()) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := start()
		if err == nil {
			return
		}
		stop()
		if attempt == 3 || !taken(err) {
			t.Fatalf("testenv: %v", err)
		}
	}
}

// startProcess starts bin with args, its output appended to logPath. A test
// binary killed by its -timeout runs no cleanup: the kernel then kills the
// process (Pdeathsig), which would otherwise keep its ports and CPU.
func startProcess(bin string, args []string, logPath string) (*exec.Cmd, error) {
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, nil
}
