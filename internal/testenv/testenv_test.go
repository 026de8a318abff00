package testenv

import (
	"net"
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
