package testenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
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

	t testing.TB   // the test that methods fail
	p *btcdProcess // shared by every binding (For)
}

// btcdProcess is the running btcd behind every binding of a Btcd.
type btcdProcess struct {
	bin  string
	args []string

	mu        sync.Mutex
	cmd       *exec.Cmd
	clients   []*rpcclient.Client
	coinbases coinbases
}

var _ Node = (*Btcd)(nil)

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
	key, p2pkh, p2wpkh := testKey(t)
	b := &Btcd{
		User:           "lode",
		Pass:           "lodepass",
		Dir:            t.TempDir(),
		Params:         &chaincfg.RegressionNetParams,
		Key:            key,
		Address:        p2pkh,
		WitnessAddress: p2wpkh,
		t:              t,
		p:              &btcdProcess{bin: bin},
	}
	txindex, rest := splitTxIndex(extra, "--txindex")
	// A port found free can be taken by another test's server before btcd
	// binds it; then btcd exits at once and is started on new ports.
	startOnFreePorts(t, func() error {
		b.RPCAddr = addr(FreePort(t))
		b.p.args = append(append(append([]string(nil), txindex...),
			"--regtest", "--notls", "--nobanning",
			"--datadir="+filepath.Join(b.Dir, "data"),
			"--logdir="+filepath.Join(b.Dir, "logs"),
			"--rpclisten="+b.RPCAddr,
			"--rpcuser="+b.User, "--rpcpass="+b.Pass,
			"--listen="+addr(FreePort(t)),
			"--miningaddr="+p2pkh.EncodeAddress(),
			"--debuglevel=warn",
		), rest...)
		return b.start()
	}, func(err error) bool { return strings.Contains(err.Error(), "address already in use") }, b.Stop)
	t.Cleanup(b.Stop)
	return b
}

func (b *Btcd) start() error {
	logPath := filepath.Join(b.Dir, "btcd.out")
	cmd, err := startProcess(b.p.bin, b.p.args, logPath)
	if err != nil {
		return err
	}
	b.p.mu.Lock()
	b.p.cmd = cmd
	b.p.mu.Unlock()
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

// Stop shuts btcd down (SIGTERM; SIGKILL after 30 s) and waits for it.
// Safe to call twice.
func (b *Btcd) Stop() {
	b.p.mu.Lock()
	for _, c := range b.p.clients {
		c.Shutdown()
	}
	b.p.clients = nil
	cmd := b.p.cmd
	b.p.cmd = nil
	b.p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart restarts btcd on the same datadir and ports. btcd deletes its
// regtest chain on every start, so the node comes back at height 0.
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
	b.p.mu.Lock()
	b.p.clients = append(b.p.clients, c)
	b.p.mu.Unlock()
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
	return sendTx(b.t, b, &b.p.coinbases, outputs...)
}

// SendWitnessTx puts a transaction with witness data in the mempool: it pays
// a coinbase to WitnessAddress (SendTx) and spends that P2WPKH output back
// to Address. Both transactions are returned; the second has a witness.
func (b *Btcd) SendWitnessTx() (funding, witness *wire.MsgTx) {
	b.t.Helper()
	b.ActivateSegwit()
	return sendWitnessTx(b.t, b, &b.p.coinbases, b.WitnessAddress)
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

// String describes the node for test logs.
func (b *Btcd) String() string { return fmt.Sprintf("btcd regtest at %s (dir %s)", b.RPCAddr, b.Dir) }

// Kind returns KindBtcd.
func (b *Btcd) Kind() string { return KindBtcd }

// RPCAuth returns the rpcuser and rpcpassword (btcd has no cookie).
func (b *Btcd) RPCAuth() (user, pass, cookieFile string) { return b.User, b.Pass, "" }

// ZMQHashBlock returns "": btcd has no ZMQ notifications.
func (b *Btcd) ZMQHashBlock() string { return "" }

// Chain returns the regtest parameters.
func (b *Btcd) Chain() *chaincfg.Params { return b.Params }

// TestKey returns Key.
func (b *Btcd) TestKey() *btcec.PrivateKey { return b.Key }

// MiningAddress returns Address.
func (b *Btcd) MiningAddress() btcutil.Address { return b.Address }

// InvalidateBlock marks the block invalid (invalidateblock).
func (b *Btcd) InvalidateBlock(hash chainhash.Hash) {
	b.t.Helper()
	invalidateBlock(b.t, b.Client(), hash)
}

// For returns the node bound to t.
func (b *Btcd) For(t testing.TB) Node { return b.Bind(t) }

// Bind returns the node bound to t (For with the concrete type).
func (b *Btcd) Bind(t testing.TB) *Btcd {
	c := *b
	c.t = t
	return &c
}
