package bitcoind

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/go-zeromq/zmq4"

	"github.com/lode-pool/lode/blocktemplate"
	"github.com/lode-pool/lode/internal/testenv"
)

// publishUntilJob plays Core's hashblock notifier on pub until a job for
// tip arrives (a PUB socket drops messages until the subscriber joins).
func publishUntilJob(t *testing.T, pub zmq4.Socket, jobs <-chan *blocktemplate.Job, tip chainhash.Hash) *blocktemplate.Job {
	t.Helper()
	display := make([]byte, 32)
	for i := range display {
		display[i] = tip[31-i]
	}
	deadline := time.After(30 * time.Second)
	for seq := uint32(0); ; seq++ {
		seqb := make([]byte, 4)
		binary.LittleEndian.PutUint32(seqb, seq)
		if err := pub.Send(zmq4.NewMsgFrom([]byte("hashblock"), display, seqb)); err != nil {
			t.Fatal(err)
		}
		select {
		case j := <-jobs:
			return j
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatal("no job after hashblock")
			return nil
		}
	}
}

// TestManagerZMQReconnect: the notifier goes away (Core restarting) and
// comes back on the same address; the Manager subscribes again.
func TestManagerZMQReconnect(t *testing.T) {
	node := testenv.StartBtcd(t)
	c := newClient(t, node)
	addr := fmt.Sprintf("tcp://127.0.0.1:%d", testenv.FreePort(t))
	listen := func() (zmq4.Socket, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		pub := zmq4.NewPub(ctx)
		if err := pub.Listen(addr); err != nil {
			cancel()
			t.Fatal(err)
		}
		return pub, cancel
	}
	pub, stop := listen()
	m, jobs := startManager(t, blocktemplate.ManagerConfig{
		Source: c, Builder: testBuilder(t, node), PollInterval: -1, RefreshInterval: -1, ZMQAddress: addr,
	})
	first := nextJob(t, jobs)
	tip := *node.Generate(1)[0]
	second := publishUntilJob(t, pub, jobs, tip)
	checkTipJob(t, m, first, second, tip)

	pub.Close()
	stop()
	pub, stop = listen()
	defer func() { pub.Close(); stop() }()
	tip = *node.Generate(1)[0]
	checkTipJob(t, m, second, publishUntilJob(t, pub, jobs, tip), tip)
}
