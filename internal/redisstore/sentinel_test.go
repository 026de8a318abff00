//go:build e2e

package redisstore

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/lode-pool/lode/internal/testenv"
)

// TestSentinelFailoverKeepsAcknowledgedShares: a Sentinel-managed primary
// with two replicas, shares recorded under load with WAIT for one replica.
// The primary is SIGKILLed, the Sentinels promote a replica (the client
// follows them), the old primary comes back as a replica. Every share whose
// Record returned nil is in the ledger afterwards, none counted twice.
func TestSentinelFailoverKeepsAcknowledgedShares(t *testing.T) {
	sn := testenv.StartRedisSentinel(t, 2)
	s, err := Connect(context.Background(), ConnectConfig{Mode: ModeSentinel, Addrs: sn.SentinelAddrs(),
		MasterName: testenv.SentinelMaster, Prefix: "s", MinReplicasAcked: 1,
		ReplicaAckTimeout: 500 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Client().Close() })
	rec := startRecorder(t, s)
	finish := ledgerLoad(t, rec, 4)
	waitShares(t, rec, 300, "shares before the failover")
	old := sn.KillPrimary()
	waitShares(t, rec, 100, "shares acknowledged (spool) while the primary is down")
	promoted := sn.WaitPromotion(old)
	t.Logf("primary moved from %s to %s", old.Addr, promoted.Addr)
	old.Restart()
	sn.WaitReplicas(2)
	waitFor(t, spoolReplayLimit, "spool replayed after the failover", func() bool { return !rec.Stats().SpoolPending })
	waitShares(t, rec, 300, "shares after the failover")
	res := finish()
	waitFor(t, spoolReplayLimit, "spool replayed", func() bool { return !rec.Stats().SpoolPending })
	if st := rec.Stats(); st.Spooled == 0 {
		t.Fatalf("stats %+v: the failover never reached the spool", st)
	}
	checkLedger(t, s, res)
}
