package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// Bitcoind is a Bitcoin Core regtest node owned by a test: cookie auth,
// -txindex, ZMQ hashblock, no wallet. Blocks it generates
// (generatetoaddress) pay the test key (Address); SendTx and SendWitnessTx
// spend those coinbases with that key, as Btcd's do.
type Bitcoind struct {
	RPCAddr string // host:port of the RPC server
	ZMQAddr string // tcp://127.0.0.1:port publishing hashblock
	Dir     string // -datadir
	Params  *chaincfg.Params

	Key            *btcec.PrivateKey
	Address        btcutil.Address // P2PKH of Key; Generate pays it
	WitnessAddress btcutil.Address // P2WPKH of Key

	t testing.TB       // the test that methods fail
	p *bitcoindProcess // shared by every binding (For)
}

// bitcoindProcess is the running bitcoind behind every binding.
type bitcoindProcess struct {
	bin  string
	args []string

	mu        sync.Mutex
	cmd       *exec.Cmd
	exited    chan struct{} // closed when cmd has exited
	clients   []*rpcclient.Client
	coinbases coinbases
	mockTime  int64 // the node's setmocktime, 0 if never set
}

var _ Node = (*Bitcoind)(nil)

// StartBitcoind starts Bitcoin Core (./bin/bitcoind, installed by `make
// deps`) in regtest on free loopback ports with -txindex (unless NoTxIndex
// is given) and ZMQ hashblock. Extra arguments are appended to the command
// line, e.g. "-blockmaxweight=4000".
func StartBitcoind(t testing.TB, extra ...string) *Bitcoind {
	t.Helper()
	bin := Binary(t, "bitcoind", "run `make deps` (it installs Bitcoin Core v30.0 into ./bin)")
	key, p2pkh, p2wpkh := testKey(t)
	b := &Bitcoind{
		Dir:            t.TempDir(),
		Params:         &chaincfg.RegressionNetParams,
		Key:            key,
		Address:        p2pkh,
		WitnessAddress: p2wpkh,
		t:              t,
		p:              &bitcoindProcess{bin: bin},
	}
	txindex, rest := splitTxIndex(extra, "-txindex")
	// A port found free can be taken by another test's server before
	// bitcoind binds it; then bitcoind exits at once and is started on new
	// ports.
	startOnFreePorts(t, func() error {
		rpcPort := FreePort(t)
		b.RPCAddr = addr(rpcPort)
		b.ZMQAddr = "tcp://" + addr(FreePort(t))
		b.p.args = append(append([]string{
			"-regtest", "-server", "-datadir=" + b.Dir,
			"-rpcbind=127.0.0.1", "-rpcallowip=127.0.0.1", "-rpcport=" + strconv.Itoa(rpcPort),
			"-bind=127.0.0.1:" + strconv.Itoa(FreePort(t)),
			"-zmqpubhashblock=" + b.ZMQAddr,
			// A wallet option: a build without the wallet accepts and
			// ignores it, one with it needs it to send on regtest.
			"-fallbackfee=0.0001",
			"-connect=0", "-dnsseed=0", "-fixedseeds=0", "-listenonion=0", "-discover=0",
			"-printtoconsole=0",
		}, txindex...), rest...)
		return b.start()
	}, func(err error) bool { return errors.Is(err, errPortTaken) }, b.Stop)
	t.Cleanup(b.kill)
	return b
}

var errPortTaken = errors.New("port taken")

// CookieFile is where bitcoind writes the RPC cookie (user:password), anew
// on every start.
func (b *Bitcoind) CookieFile() string { return filepath.Join(b.Dir, "regtest", ".cookie") }

func (b *Bitcoind) start() error {
	_ = os.Remove(b.CookieFile())
	logPath := filepath.Join(b.Dir, "bitcoind.out")
	cmd, err := startProcess(b.p.bin, b.p.args, logPath)
	if err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	b.p.mu.Lock()
	b.p.cmd, b.p.exited = cmd, exited
	b.p.mu.Unlock()

	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			out, _ := os.ReadFile(logPath)
			debug, _ := os.ReadFile(filepath.Join(b.Dir, "regtest", "debug.log"))
			err := fmt.Errorf("bitcoind exited at start:\n%s\n%s", out, tail(debug, 2000))
			if bytes.Contains(out, []byte("Unable to bind")) || bytes.Contains(debug, []byte("Unable to bind")) ||
				bytes.Contains(debug, []byte("Address already in use")) || bytes.Contains(debug, []byte("Failed to bind")) {
				return fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
		// RPC answers once the cookie exists and warm-up (-28) is over.
		if _, statErr := os.Stat(b.CookieFile()); statErr == nil {
			c, err := b.newClient()
			if err == nil {
				_, err = c.GetBlockCount()
				c.Shutdown()
				if err == nil {
					return nil
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("bitcoind RPC on %s not ready: %v", b.RPCAddr, err)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("bitcoind wrote no cookie at %s", b.CookieFile())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// Stop shuts bitcoind down (SIGTERM: it flushes its state and deletes the
// cookie) and waits for it. A getblocktemplate long poll holds Core's
// shutdown for up to a minute, so it is killed after 10 s (Core recovers
// from that on the next start). Safe to call twice.
func (b *Bitcoind) Stop() { b.stop(10 * time.Second) }

// kill stops bitcoind at once (SIGKILL): the end of a test, whose
// directory goes away.
func (b *Bitcoind) kill() { b.stop(0) }

func (b *Bitcoind) stop(grace time.Duration) {
	b.p.mu.Lock()
	for _, c := range b.p.clients {
		c.Shutdown()
	}
	b.p.clients = nil
	cmd, exited := b.p.cmd, b.p.exited
	b.p.cmd = nil
	b.p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	if grace > 0 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return
		case <-time.After(grace):
		}
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops bitcoind and starts it on the same datadir and ports; the
// chain is kept and a new cookie is written.
func (b *Bitcoind) Restart() {
	b.t.Helper()
	b.Stop()
	if err := b.start(); err != nil {
		b.t.Fatalf("testenv: restart: %v", err)
	}
}

// RPCURL returns the node's RPC URL, e.g. http://127.0.0.1:18443.
func (b *Bitcoind) RPCURL() string { return "http://" + b.RPCAddr }

// RPCAuth returns the cookie file (no fixed user and password).
func (b *Bitcoind) RPCAuth() (user, pass, cookieFile string) { return "", "", b.CookieFile() }

// Cookie returns the user and password of the current cookie.
func (b *Bitcoind) Cookie() (user, pass string) {
	b.t.Helper()
	raw, err := os.ReadFile(b.CookieFile())
	if err != nil {
		b.t.Fatalf("testenv: cookie: %v", err)
	}
	u, p, ok := bytes.Cut(bytes.TrimSpace(raw), []byte(":"))
	if !ok {
		b.t.Fatalf("testenv: cookie %q is not user:password", raw)
	}
	return string(u), string(p)
}

// ZMQHashBlock returns the hashblock endpoint.
func (b *Bitcoind) ZMQHashBlock() string { return b.ZMQAddr }

// Kind returns KindCore.
func (b *Bitcoind) Kind() string { return KindCore }

// Chain returns the regtest parameters.
func (b *Bitcoind) Chain() *chaincfg.Params { return b.Params }

// TestKey returns Key.
func (b *Bitcoind) TestKey() *btcec.PrivateKey { return b.Key }

// MiningAddress returns Address.
func (b *Bitcoind) MiningAddress() btcutil.Address { return b.Address }

func (b *Bitcoind) newClient() (*rpcclient.Client, error) {
	// rpcclient re-reads CookiePath when the file changes.
	return rpcclient.New(&rpcclient.ConnConfig{
		Host: b.RPCAddr, CookiePath: b.CookieFile(),
		HTTPPostMode: true, DisableTLS: true,
	}, nil)
}

// Client returns a new rpcclient in HTTP POST mode authenticating with the
// cookie; it is shut down when the node stops.
func (b *Bitcoind) Client() *rpcclient.Client {
	b.t.Helper()
	c, err := b.newClient()
	if err != nil {
		b.t.Fatalf("testenv: rpc client: %v", err)
	}
	b.p.mu.Lock()
	b.p.clients = append(b.p.clients, c)
	b.p.mu.Unlock()
	return c
}

// RPC calls method with params (each marshalled to JSON) and returns the
// raw result.
func (b *Bitcoind) RPC(method string, params ...any) json.RawMessage {
	b.t.Helper()
	raw := make([]json.RawMessage, len(params))
	for i, p := range params {
		j, err := json.Marshal(p)
		if err != nil {
			b.t.Fatalf("testenv: %s param %d: %v", method, i, err)
		}
		raw[i] = j
	}
	c, err := b.newClient()
	if err != nil {
		b.t.Fatalf("testenv: rpc client: %v", err)
	}
	defer c.Shutdown()
	res, err := c.RawRequest(method, raw)
	if err != nil {
		b.t.Fatalf("testenv: %s: %v", method, err)
	}
	return res
}

// Generate mines n blocks paying Address (generatetoaddress) and returns
// their hashes.
func (b *Bitcoind) Generate(n uint32) []*chainhash.Hash {
	b.t.Helper()
	var hexes []string
	if err := json.Unmarshal(b.RPC("generatetoaddress", n, b.Address.EncodeAddress()), &hexes); err != nil {
		b.t.Fatalf("testenv: generatetoaddress: %v", err)
	}
	hashes := make([]*chainhash.Hash, len(hexes))
	for i, h := range hexes {
		hash, err := chainhash.NewHashFromStr(h)
		if err != nil {
			b.t.Fatalf("testenv: generatetoaddress: %v", err)
		}
		hashes[i] = hash
	}
	return hashes
}

// Height returns the node's block count.
func (b *Bitcoind) Height() int64 {
	b.t.Helper()
	var h int64
	if err := json.Unmarshal(b.RPC("getblockcount"), &h); err != nil {
		b.t.Fatalf("testenv: getblockcount: %v", err)
	}
	return h
}

// SendTx spends the next mature coinbase paid to Address into outputs (the
// remainder minus a 10000 sat fee returns to Address), broadcasts it, and
// returns it. It mines blocks first when no coinbase is mature yet.
func (b *Bitcoind) SendTx(outputs ...*wire.TxOut) *wire.MsgTx {
	b.t.Helper()
	return sendTx(b.t, b, &b.p.coinbases, outputs...)
}

// SendWitnessTx puts a transaction with witness data in the mempool: it pays
// a coinbase to WitnessAddress (SendTx) and spends that P2WPKH output back
// to Address. Segwit is active from genesis on Core's regtest.
func (b *Bitcoind) SendWitnessTx() (funding, witness *wire.MsgTx) {
	b.t.Helper()
	return sendWitnessTx(b.t, b, &b.p.coinbases, b.WitnessAddress)
}

// ActivateSegwit does nothing: segwit is active from genesis on Core's
// regtest.
func (b *Bitcoind) ActivateSegwit() {}

// InvalidateBlock marks the block invalid (invalidateblock). Core's
// generatetoaddress has no extra nonce: for the same parent it makes the
// same block again unless its time differs, and on a fast regtest chain
// block times run ahead of the clock. So the node's clock is set
// (setmocktime) past the invalidated block's time and stays there; the next
// Generate makes a different block.
func (b *Bitcoind) InvalidateBlock(hash chainhash.Hash) {
	b.t.Helper()
	c, err := b.newClient()
	if err != nil {
		b.t.Fatalf("testenv: rpc client: %v", err)
	}
	defer c.Shutdown()
	hdr, err := c.GetBlockHeader(&hash)
	if err != nil {
		b.t.Fatalf("testenv: getblockheader %s: %v", hash, err)
	}
	b.RPC("invalidateblock", hash.String())
	b.p.mu.Lock()
	mock := max(time.Now().Unix(), hdr.Timestamp.Unix()+1, b.p.mockTime)
	b.p.mockTime = mock
	b.p.mu.Unlock()
	b.RPC("setmocktime", mock)
}

// For returns the node bound to t.
func (b *Bitcoind) For(t testing.TB) Node { return b.Bind(t) }

// Bind returns the node bound to t (For with the concrete type).
func (b *Bitcoind) Bind(t testing.TB) *Bitcoind {
	c := *b
	c.t = t
	return &c
}

// String describes the node for test logs.
func (b *Bitcoind) String() string {
	return fmt.Sprintf("bitcoind regtest at %s (dir %s)", b.RPCAddr, b.Dir)
}
