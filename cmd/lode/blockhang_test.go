package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/txscript"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/payouts"
)

// hangProxy forwards TCP connections to a target and can hang: while hung,
// it accepts and reads but forwards nothing, like a node that stopped
// answering (its RPC server wedged) without closing connections.
type hangProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	hung   bool
	resume chan struct{} // closed when the hang ends
}

func startHangProxy(t *testing.T, target string) *hangProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangProxy{l: l, target: target, resume: make(chan struct{})}
	close(p.resume)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *hangProxy) addr() string { return p.l.Addr().String() }

func (p *hangProxy) hang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.hung {
		p.hung = true
		p.resume = make(chan struct{})
	}
}

func (p *hangProxy) unhang() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hung {
		p.hung = false
		close(p.resume)
	}
}

// gate waits while the proxy is hung.
func (p *hangProxy) gate() {
	p.mu.Lock()
	ch := p.resume
	p.mu.Unlock()
	<-ch
}

func (p *hangProxy) serve(c net.Conn) {
	defer c.Close()
	p.gate()
	u, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer u.Close()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.gate()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		dst.Close()
		src.Close()
	}
	go pipe(u, c)
	pipe(c, u)
}

// TestBlockShareNotHeldByHungNode: the node stops answering; a miner's
// block-finding share is answered as soon as it is durable (before the node
// answers again), and the block reaches the node once it does (issue 10
// item 4: block submission and the share shared one 30 s context, so the
// miner waited for the node and got an error).
func TestBlockShareNotHeldByHungNode(t *testing.T) {
	node := testenv.StartBtcd(t)
	redis := testenv.StartRedis(t)
	node.Generate(1)
	proxy := startHangProxy(t, node.RPCAddr)
	dir := t.TempDir()
	stratumAddr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	nodeYAML := strings.Replace(regtestNodeYAML(t, node, redis.Addr, "hang", ""), "rpc_address: "+node.RPCAddr, "rpc_address: "+proxy.addr(), 1)
	cfg := nodeYAML + fmt.Sprintf(`roles: [stratum]
pool:
  payout_address: %s
  pplns_min_window: 100
stratum:
  ports:
    - {listen: "%s", start_difficulty: 0.0001, min_difficulty: 0.000001, max_difficulty: 1}
ledger: {spool_dir: %s}
shutdown_timeout: 20s
`, node.Address.EncodeAddress(), stratumAddr, filepath.Join(dir, "spool"))
	cfgPath := filepath.Join(dir, "lode.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"-config", cfgPath}, make(chan os.Signal), io.Discard, logs) }()
	t.Cleanup(func() {
		proxy.unhang()
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("lode did not stop")
		}
		if t.Failed() {
			t.Logf("lode log:\n%s", logs.String())
		}
	})

	mctx, mcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer mcancel()
	var m *miner.Miner
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		m, err = miner.Dial(mctx, miner.Config{Address: stratumAddr, Username: node.Address.EncodeAddress() + ".rig", Password: "x"})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer m.Close()
	var sh *miner.Share
	for en2 := uint64(1); sh == nil; en2++ {
		var err error
		if sh, err = m.Mine(mctx, en2); err != nil {
			t.Fatal(err)
		}
	}
	start := node.Height()

	proxy.hang()
	// On regtest every share is a block. The miner's Timeout (10 s) is far
	// shorter than the old shared 30 s context; the reply must come while
	// the node is still hung.
	r, err := m.Submit(mctx, sh)
	if err != nil || !r.OK() {
		t.Fatalf("block-finding share while the node hangs: %v %s", err, r.Error)
	}
	if h := node.Height(); h != start {
		t.Fatalf("the node moved to %d while hung", h)
	}
	proxy.unhang()
	deadline = time.Now().Add(time.Minute)
	for node.Height() <= start {
		if time.Now().After(deadline) {
			t.Fatalf("the block did not reach the node after it answered again (height %d)", node.Height())
		}
		time.Sleep(100 * time.Millisecond)
	}
	tip, err := node.Client().GetBestBlockHash()
	if err != nil {
		t.Fatal(err)
	}
	blk, err := node.Client().GetBlock(tip)
	if err != nil {
		t.Fatal(err)
	}
	poolScript, err := txscript.PayToAddrScript(node.Address)
	if err != nil {
		t.Fatal(err)
	}
	if got := blk.Transactions[0].TxOut[0].PkScript; string(got) != string(poolScript) {
		t.Fatalf("the new tip pays %x, not the pool (%x)", got, poolScript)
	}
	// Its record, taken once a node has it, ends the window at the finding
	// share (journaled with the block while the node hung).
	store, err := redisstore.Connect(mctx, redisstore.ConnectConfig{Addr: redis.Addr, Prefix: "hang"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Client().Close()
	var rec payouts.Block
	testenv.WaitFor(t, time.Minute, "the found block recorded", func() bool {
		rec, err = store.Block(mctx, *tip)
		return err == nil && rec.WindowRoot != nil
	})
	if rec.WindowBoundary != payouts.BoundaryExact || rec.FindingSeq == "" || rec.WindowLastSeq != rec.FindingSeq {
		t.Fatalf("record: boundary %q, finding share %q, window ends at %q; want exact, at the finding share",
			rec.WindowBoundary, rec.FindingSeq, rec.WindowLastSeq)
	}
}
