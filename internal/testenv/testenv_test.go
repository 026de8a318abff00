package testenv

import (
	"net"
	"os"
	"testing"
)

func TestRedisStartsAndAnswers(t *testing.T) {
	r := StartRedis(t)
	c, err := net.Dial("tcp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := c.Read(buf); err != nil || string(buf) != "+PONG\r\n" {
		t.Fatalf("PING answered %q, %v", buf, err)
	}
}

func TestBtcdGeneratesAndSpends(t *testing.T) {
	b := StartBtcd(t)
	b.Generate(5)
	if h := b.Height(); h != 5 {
		t.Fatalf("height %d after generating 5", h)
	}
	_, wtx := b.SendWitnessTx()
	pool, err := b.Client().GetRawMempool()
	if err != nil {
		t.Fatal(err)
	}
	if len(pool) != 2 {
		t.Fatalf("mempool holds %d transactions, want 2", len(pool))
	}
	if !wtx.HasWitness() {
		t.Fatal("witness transaction has no witness")
	}
}

// TestNodesGenerateSpendRestart runs the Node contract over btcd and Core:
// blocks pay the test key, both kinds of transaction reach the mempool and
// are mined, an invalidated block leaves the main chain, and the node answers
// after a restart (Core: on its chain, with a new cookie).
func TestNodesGenerateSpendRestart(t *testing.T) {
	ForEachNode(t, func(t *testing.T, node Node) {
		start := node.Height()
		hashes := node.Generate(3)
		if len(hashes) != 3 || node.Height() != start+3 {
			t.Fatalf("generated %d, height %d -> %d", len(hashes), start, node.Height())
		}
		// Coinbases mature and segwit active, so SendTx mines nothing.
		node.Generate(CoinbaseMaturity + 5)
		node.ActivateSegwit()
		tx := node.SendTx()
		_, wtx := node.SendWitnessTx()
		if !wtx.HasWitness() {
			t.Fatal("witness transaction has no witness")
		}
		pool, err := node.Client().GetRawMempool()
		if err != nil {
			t.Fatal(err)
		}
		if len(pool) != 3 {
			t.Fatalf("mempool holds %d transactions, want 3", len(pool))
		}
		mined := node.Generate(1)[0]
		blk, err := node.Client().GetBlock(mined)
		if err != nil {
			t.Fatal(err)
		}
		if len(blk.Transactions) != 4 || blk.Transactions[1].TxHash() != tx.TxHash() && blk.Transactions[2].TxHash() != tx.TxHash() && blk.Transactions[3].TxHash() != tx.TxHash() {
			t.Fatalf("block holds %d transactions, want coinbase + 3 including %s", len(blk.Transactions), tx.TxHash())
		}

		top := node.Height()
		node.InvalidateBlock(*mined)
		if h := node.Height(); h != top-1 {
			t.Fatalf("height %d after invalidating the tip at %d", h, top)
		}

		_, _, cookie := node.RPCAuth()
		var before []byte
		if cookie != "" {
			before, err = os.ReadFile(cookie)
			if err != nil {
				t.Fatal(err)
			}
		}
		node.Restart()
		want := top - 1
		if node.Kind() == KindBtcd {
			want = 0 // btcd starts regtest afresh
		}
		if h := node.Height(); h != want {
			t.Fatalf("height %d after restart, want %d", h, want)
		}
		if cookie != "" {
			after, err := os.ReadFile(cookie)
			if err != nil {
				t.Fatal(err)
			}
			if string(after) == string(before) {
				t.Fatal("the cookie did not change on restart")
			}
		}
	})
}

func TestRedisClusterFailover(t *testing.T) {
	c := StartRedisCluster(t, 3, 1)
	const key = "t:{acct}:x"
	old := c.KillMasterFor(key)
	promoted := c.WaitPromotion(key, old)
	if promoted == old {
		t.Fatal("the killed master still serves the slot")
	}
	old.Restart() // rejoins as a replica of the promoted node
	c.WaitHealthy()
	if m := c.MasterFor(key); m != promoted {
		t.Fatalf("slot moved again to %s", m.Addr)
	}
}

func TestRedisSentinelFailover(t *testing.T) {
	s := StartRedisSentinel(t, 2)
	old := s.KillPrimary()
	promoted := s.WaitPromotion(old)
	if promoted == old {
		t.Fatal("the killed primary is still primary")
	}
	s.WaitReplicas(1)
}
