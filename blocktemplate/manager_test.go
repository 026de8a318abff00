package blocktemplate

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// idleSource is never asked: these tests drive publish directly to check
// the job-set and fan-out rules without a node (node-driven Manager tests
// live in blocktemplate/bitcoind, against btcd and Bitcoin Core).
type idleSource struct{}

func (idleSource) GetBlockTemplate(context.Context, string) ([]byte, error) {
	return nil, errors.New("idle source")
}
func (idleSource) GetBestBlockHash(context.Context) (chainhash.Hash, error) {
	return chainhash.Hash{}, errors.New("idle source")
}

func newTestManager(t *testing.T, maxJobs, queue int) (*Manager, *Template) {
	t.Helper()
	tpl, err := ParseTemplate(readFixture(t, "regtest-506-p2poolv2.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr})
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(ManagerConfig{Source: idleSource{}, Builder: b, MaxJobs: maxJobs, SubscriberQueue: queue})
	if err != nil {
		t.Fatal(err)
	}
	return m, tpl
}

func otherTip(tpl *Template, b byte) *Template {
	c := *tpl
	c.PrevHash[0] ^= b
	c.Height++
	return &c
}

func TestManagerConfigValidate(t *testing.T) {
	b, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr})
	if err != nil {
		t.Fatal(err)
	}
	bad := []ManagerConfig{
		{Builder: b},
		{Source: idleSource{}},
		{Source: idleSource{}, Builder: b, MaxJobs: -1},
		{Source: idleSource{}, Builder: b, RetryMin: time.Second, RetryMax: time.Millisecond},
	}
	for i, c := range bad {
		if _, err := NewManager(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	m, err := NewManager(ManagerConfig{Source: idleSource{}, Builder: b})
	if err != nil {
		t.Fatal(err)
	}
	if m.cfg.PollInterval != time.Second || m.cfg.RefreshInterval != 30*time.Second || m.cfg.MaxJobs != 8 {
		t.Errorf("defaults %+v", m.cfg)
	}
	if err := m.Refresh(context.Background()); err == nil {
		t.Error("Refresh before Run succeeded")
	}
}

func TestManagerJobSet(t *testing.T) {
	m, tplA := newTestManager(t, 3, 64)
	if m.Current() != nil {
		t.Fatal("current before any template")
	}
	if _, ok := m.Lookup("1"); ok {
		t.Fatal("lookup before any template")
	}
	seenA := time.Unix(1000, 0)
	if err := m.publish(tplA, triggerTip, seenA); err != nil {
		t.Fatal(err)
	}
	first := m.Current()
	if !first.CleanJobs || !first.TipSeenAt.Equal(seenA) {
		t.Fatalf("first job clean=%v tipSeenAt=%v", first.CleanJobs, first.TipSeenAt)
	}
	// A tip notice with the same prevhash publishes nothing.
	if err := m.publish(tplA, triggerTip, time.Now()); err != nil || m.Current() != first {
		t.Fatalf("same-tip notice published a job (%v)", err)
	}
	var jobs []*Job
	jobs = append(jobs, first)
	for i := 0; i < 3; i++ {
		if err := m.publish(tplA, triggerRefresh, time.Now()); err != nil {
			t.Fatal(err)
		}
		j := m.Current()
		if j.CleanJobs || !j.TipSeenAt.Equal(seenA) {
			t.Fatalf("refresh job clean=%v tipSeenAt=%v", j.CleanJobs, j.TipSeenAt)
		}
		jobs = append(jobs, j)
	}
	// MaxJobs=3: the oldest is evicted, the last three are valid.
	if _, ok := m.Lookup(jobs[0].ID); ok {
		t.Error("job beyond MaxJobs still valid")
	}
	for _, j := range jobs[1:] {
		if got, ok := m.Lookup(j.ID); !ok || got != j {
			t.Errorf("job %s not valid", j.ID)
		}
	}
	seenB := time.Unix(2000, 0)
	tplB := otherTip(tplA, 1)
	if err := m.publish(tplB, triggerRefresh, seenB); err != nil {
		t.Fatal(err)
	}
	b := m.Current()
	if !b.CleanJobs || b.PrevHash != tplB.PrevHash || !b.TipSeenAt.Equal(seenB) {
		t.Fatalf("new tip job %+v", b)
	}
	for _, j := range jobs {
		if _, ok := m.Lookup(j.ID); ok {
			t.Errorf("job %s of the old tip is not stale", j.ID)
		}
	}
	if _, ok := m.Lookup(b.ID); !ok {
		t.Error("current job not found")
	}
	if _, ok := m.Lookup("no-such-job"); ok {
		t.Error("unknown id found")
	}
}

func recv(t *testing.T, ch <-chan *Job) *Job {
	t.Helper()
	select {
	case j, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return j
	case <-time.After(10 * time.Second):
		t.Fatal("no job")
		return nil
	}
}

func TestManagerSubscribe(t *testing.T) {
	m, tpl := newTestManager(t, 8, 64)
	ctx, cancel := context.WithCancel(context.Background())
	early := m.Subscribe(ctx)
	if err := m.publish(tpl, triggerTip, time.Now()); err != nil {
		t.Fatal(err)
	}
	late := m.Subscribe(ctx) // gets the current job first
	var published []*Job
	published = append(published, m.Current())
	for i := 0; i < 5; i++ {
		next := tpl
		if i == 2 {
			next = otherTip(tpl, 2)
			tpl = next
		}
		if err := m.publish(next, triggerRefresh, time.Now()); err != nil {
			t.Fatal(err)
		}
		published = append(published, m.Current())
	}
	for name, ch := range map[string]<-chan *Job{"early": early, "late": late} {
		for i, want := range published {
			if got := recv(t, ch); got != want {
				t.Fatalf("%s: job %d is %s (clean=%v), want %s", name, i, got.ID, got.CleanJobs, want.ID)
			}
		}
	}
	cancel()
	for _, ch := range []<-chan *Job{early, late} {
		select {
		case _, ok := <-ch:
			if ok {
				t.Fatal("job after cancel")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("channel not closed after cancel")
		}
	}
}

// TestManagerSlowSubscriber: a subscriber that does not read never blocks
// publishing; its backlog collapses to the newest job, marked clean when a
// clean job was dropped.
func TestManagerSlowSubscriber(t *testing.T) {
	m, tpl := newTestManager(t, 8, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := m.Subscribe(ctx)
	if err := m.publish(tpl, triggerTip, time.Now()); err != nil {
		t.Fatal(err)
	}
	// The forwarder holds the first job while waiting to send it; the
	// queue then fills with a clean job and refreshes.
	tpl2 := otherTip(tpl, 3)
	deadline := time.Now().Add(10 * time.Second)
	for m.DroppedJobs() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("backlog never collapsed")
		}
		if err := m.publish(tpl2, triggerRefresh, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	newest := m.Current()
	// Depending on whether the forwarder had taken the first job before
	// the collapse, the subscriber sees one or two jobs; the last one is
	// the newest, marked clean.
	var got []*Job
	for len(got) < 2 {
		j := recv(t, ch)
		got = append(got, j)
		if j.ID == newest.ID {
			break
		}
	}
	last := got[len(got)-1]
	if last.ID != newest.ID || !last.CleanJobs || newest.CleanJobs {
		t.Fatalf("collapsed job %s clean=%v, newest %s clean=%v", last.ID, last.CleanJobs, newest.ID, newest.CleanJobs)
	}
	if len(got) == 2 && (got[0].PrevHash != tpl.PrevHash || !got[0].CleanJobs) {
		t.Fatalf("unexpected first job %s", got[0].ID)
	}
}

// TestLongPollIsNews: which long-poll templates the Manager publishes
// (issue 9 item 3: one job per tip change).
func TestLongPollIsNews(t *testing.T) {
	m, tpl := newTestManager(t, 8, 8)
	b := m.cfg.Builder
	cur, err := b.Job(tpl, true)
	if err != nil {
		t.Fatal(err)
	}
	older := *tpl
	older.PrevHash[1] ^= 1
	older.Height--
	rival := *tpl
	rival.PrevHash[2] ^= 1
	newer := otherTip(tpl, 3)
	gone := chainhash.Hash{9} // a tip before the current one
	tests := []struct {
		name string
		cur  *Job
		lp   lpTemplate
		want bool
	}{
		{"no job yet", nil, lpTemplate{t: tpl, sentOn: gone}, true},
		{"sent on the current tip: new transactions", cur, lpTemplate{t: tpl, sentOn: tpl.PrevHash}, true},
		{"sent on the current tip: new block", cur, lpTemplate{t: newer, sentOn: tpl.PrevHash}, true},
		{"sent on an old tip: the tip already published", cur, lpTemplate{t: tpl, sentOn: gone}, false},
		{"sent on an old tip: an older tip", cur, lpTemplate{t: &older, sentOn: gone}, false},
		{"sent on an old tip: a rival at the same height", cur, lpTemplate{t: &rival, sentOn: gone}, false},
		{"sent on an old tip: a higher tip", cur, lpTemplate{t: newer, sentOn: gone}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lpIsNews(tc.cur, tc.lp); got != tc.want {
				t.Fatalf("lpIsNews = %v, want %v", got, tc.want)
			}
		})
	}
}
