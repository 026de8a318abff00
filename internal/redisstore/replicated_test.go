package redisstore

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/testenv"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/shares/ledger"
)

// TestReplicaWaitFallsBackToSpool: with min_replicas_acked 1 and no replica
// yet, a batch is applied by the primary but not acknowledged
// (ErrNotReplicated); the ledger spools such batches, so Record still
// succeeds (the spool is fsynced) and nothing is acknowledged on the
// primary's word alone. Once a replica attaches, the spool is replayed and
// every share is on the replica, counted once.
func TestReplicaWaitFallsBackToSpool(t *testing.T) {
	primary := testenv.StartRedis(t)
	s, err := Connect(context.Background(), ConnectConfig{Addr: primary.Addr, Prefix: "r", MinReplicasAcked: 1,
		ReplicaAckTimeout: 200 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Client().Close() })
	ctx := context.Background()
	b := &ledger.Batch{Instance: "direct", Seq: 10, Kind: ledger.BatchAccounting,
		Shares: []ledger.Entry{entryOf(9, "addrX")}}
	if err := s.ApplyBatch(ctx, b, "0"); !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("ApplyBatch without a replica = %v, want ErrNotReplicated", err)
	}

	rec := startRecorder(t, s)
	const n = 20
	for i := range n {
		sh := shares.Share{Worker: "addrY.w", Address: "addrY", WorkerName: "w", Difficulty: 1, HashDifficulty: 1,
			Time: time.Now()}
		if err := rec.Record(ctx, sh); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	if st := rec.Stats(); st.Batches != 0 || st.Spooled == 0 || !st.SpoolPending {
		t.Fatalf("without a replica: %+v, want every batch spooled and none acknowledged by Redis", st)
	}

	replica := testenv.StartRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(primary.Port()))
	waitFor(t, 30*time.Second, "the spool replayed once a replica acknowledges", func() bool {
		return !rec.Stats().SpoolPending
	})
	rr := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rr.Close()
	w, err := New(rr, Config{Prefix: "r"}).Window(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byAddr, _, err := w.ByAddress()
	if err != nil || byAddr["addrY"] == nil || byAddr["addrY"].String() != strconv.Itoa(n)+"00000000" {
		t.Fatalf("the replica's window for addrY = %v, %v; want %d shares of difficulty 1", byAddr["addrY"], err, n)
	}
}

// entryOf is one share of difficulty 1.
func entryOf(seq uint64, address string) ledger.Entry {
	return ledger.Entry{Seq: seq, Units: "100000000", Share: shares.Share{Worker: address, Address: address,
		Difficulty: 1, HashDifficulty: 1, Time: time.Now()}}
}
