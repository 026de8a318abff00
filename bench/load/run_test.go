package load

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestFloorRawFanout runs the floor broadcaster against raw clients and
// checks every client sees every broadcast once, with the event marked.
func TestFloorRawFanout(t *testing.T) {
	f, err := ListenFloor("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const conns = 50
	r, err := New(Config{Address: f.Addr(), Conns: conns, Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for f.Conns() < conns {
		time.Sleep(time.Millisecond)
	}
	job := testJob(t)
	for seq := range 3 {
		line, err := NotifyLineFor(job, seq)
		if err != nil {
			t.Fatal(err)
		}
		r.MarkBlock(time.Now())
		if _, failed := f.Broadcast(line); failed != 0 {
			t.Fatalf("%d writes failed", failed)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			fs := r.Fanouts()
			if len(fs) == seq+1 && fs[seq].Received == conns {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("broadcast %d: fan-outs %+v", seq, fs)
			}
			time.Sleep(time.Millisecond)
		}
	}
	fs := r.Fanouts()
	for _, fo := range fs {
		if fo.Event.IsZero() || fo.Last.Before(fo.First) || fo.First.Before(fo.Event) {
			t.Errorf("fan-out %+v", fo)
		}
	}
	p50, maxD, n := FanoutSummary(fs, conns)
	if n != 3 || p50 <= 0 || maxD < p50 {
		t.Errorf("summary p50 %v max %v n %d", p50, maxD, n)
	}
	if r.Snapshot().ProtocolErrors != 0 {
		t.Errorf("protocol errors %d", r.Snapshot().ProtocolErrors)
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS < 1<<20 || s.Threads < 1 {
		t.Fatalf("sample %+v", s)
	}
	if _, err := ReadProc(-1); err == nil {
		t.Fatal("pid -1 read")
	}
}

func TestNewConfigErrors(t *testing.T) {
	if _, err := New(Config{Username: "u"}); err == nil {
		t.Error("no address accepted")
	}
	if _, err := New(Config{Address: "127.0.0.1:1"}); err == nil {
		t.Error("no username accepted")
	}
}

func TestConnectRefused(t *testing.T) {
	f, err := ListenFloor("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := f.Addr()
	f.Close()
	r, err := New(Config{Address: addr, Username: "u", Conns: 2, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Connect(context.Background()); err == nil {
		t.Fatal("connect to a closed port succeeded")
	}
	if s := r.Snapshot(); s.ConnErrors != 2 {
		t.Fatalf("conn errors %d", s.ConnErrors)
	}
}

func TestNotifyPrevHash(t *testing.T) {
	prev := "00000000000000000000000000000000000000000000000000000000000000ab"
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{`{"id":null,"method":"mining.notify","params":["1a","` + prev + `","01","02",[],"20000000","1d00ffff","65000000",true]}`, true},
		{`{"id":null,"method":"mining.notify","params":["1\"a","` + prev + `","01"]}`, false},
		{`{"id":null,"method":"mining.notify","params":["1a","00ab","01"]}`, false},
		{`{"id":null,"method":"mining.set_difficulty","params":[1]}`, false},
		{`{"id":null,"method":"mining.notify","params":["1a"`, false},
	} {
		got, ok := notifyPrevHash([]byte(tc.line))
		if ok != tc.ok || (ok && string(got) != prev) {
			t.Errorf("notifyPrevHash(%s) = %s, %v", tc.line, got, ok)
		}
	}
}

// TestEchoFloor mines and submits against the echo floor: the handshake,
// difficulty and notify it sends are enough for the load client.
func TestEchoFloor(t *testing.T) {
	line, err := NotifyLineFor(testJob(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ListenEcho("127.0.0.1:0", line, 1e-8)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := New(Config{Address: f.Addr(), Username: "u.w1", Conns: 3, VersionRolling: true, SharesPerConn: 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WaitJobs(ctx); err != nil {
		t.Fatal(err)
	}
	r.Mine(ctx)
	if s := r.Snapshot(); s.Accepted != 60 || s.Rejected != 0 || s.ProtocolErrors != 0 {
		t.Fatalf("snapshot %+v", s)
	}
}
