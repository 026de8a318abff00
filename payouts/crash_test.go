//go:build e2e

package payouts_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/redis/go-redis/v9"

	"github.com/lode-pool/lode/blocks"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts"
)

// The crash test re-executes this test binary as an unlocker process
// (TestMain sees crashChildEnv) that SIGKILLs itself right before or right
// after its Nth ledger call, i.e. between any two steps of the unlocker.
const (
	crashChildEnv = "LODE_UNLOCKER_CRASH_CHILD"
	crashAtEnv    = "LODE_UNLOCKER_CRASH_AT" // "before:N", "after:N" or ""
	crashRedisEnv = "LODE_UNLOCKER_CRASH_REDIS"
	crashNodeEnv  = "LODE_UNLOCKER_CRASH_NODE" // url user pass cookie-file (empty ones as "-")
	crashSpendEnv = "LODE_UNLOCKER_CRASH_SCRIPT"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) == "1" {
		os.Exit(crashChild())
	}
	os.Exit(m.Run())
}

// killingLedger forwards to a Ledger and kills the process at one call.
type killingLedger struct {
	payouts.Ledger
	when  string // "before" or "after"
	at, n int
}

func (k *killingLedger) call(f func()) {
	k.n++
	if k.n == k.at && k.when == "before" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal arrives asynchronously; never continue
	}
	f()
	if k.n == k.at && k.when == "after" {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

func (k *killingLedger) UnconfirmedBlocks(ctx context.Context) (b []payouts.Block, err error) {
	k.call(func() { b, err = k.Ledger.UnconfirmedBlocks(ctx) })
	return
}

func (k *killingLedger) Contributions(ctx context.Context, h chainhash.Hash) (c []payouts.Contribution, err error) {
	k.call(func() { c, err = k.Ledger.Contributions(ctx, h) })
	return
}

func (k *killingLedger) MarkImmature(ctx context.Context, h chainhash.Hash, conf int64, now time.Time) (s payouts.BlockStatus, err error) {
	k.call(func() { s, err = k.Ledger.MarkImmature(ctx, h, conf, now) })
	return
}

func (k *killingLedger) CreditBlock(ctx context.Context, c payouts.BlockCredit) (ok bool, err error) {
	k.call(func() { ok, err = k.Ledger.CreditBlock(ctx, c) })
	return
}

func (k *killingLedger) OrphanBlock(ctx context.Context, h chainhash.Hash, now time.Time) (ok bool, err error) {
	k.call(func() { ok, err = k.Ledger.OrphanBlock(ctx, h, now) })
	return
}

// crashChild runs one unlocker step; exit 0 when it completed.
func crashChild() int {
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv(crashRedisEnv)})
	defer rdb.Close()
	var ledger payouts.Ledger = redisstore.New(rdb, redisstore.Config{Prefix: testPrefix})
	if at := os.Getenv(crashAtEnv); at != "" {
		when, n, _ := strings.Cut(at, ":")
		k, _ := strconv.Atoi(n)
		ledger = &killingLedger{Ledger: ledger, when: when, at: k}
	}
	node := strings.Fields(os.Getenv(crashNodeEnv))
	for i := range node {
		if node[i] == "-" {
			node[i] = ""
		}
	}
	chain, err := nodeClient(node[0], node[1], node[2], node[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	defer chain.Close()
	script, _ := hex.DecodeString(os.Getenv(crashSpendEnv))
	u, err := payouts.NewUnlocker(payouts.UnlockerConfig{Ledger: ledger, Chain: chain, PayoutScript: script, FeeBasisPoints: 100})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 3
	}
	if _, err := u.Step(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 4
	}
	return 0
}

// runChild runs the unlocker subprocess and reports whether it was killed.
func (e *env) runChild(at string) (killed bool) {
	e.t.Helper()
	user, pass, cookie := e.chain.RPCAuth()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashAtEnv+"="+at,
		crashRedisEnv+"="+e.redis.Addr,
		crashNodeEnv+"="+e.chain.RPCURL()+" "+orDash(user)+" "+orDash(pass)+" "+orDash(cookie),
		crashSpendEnv+"="+hex.EncodeToString(e.script))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		e.t.Fatalf("unlocker child (%s): %v\n%s", at, err, out)
	}
	return false
}

// TestUnlockerCrash kills the unlocker process before and after every ledger
// call of a step that credits one matured block and advances an immature
// one, restarting it each time (the state carries over, as after real
// crashes). At every point balances are either untouched or credited
// exactly once, and a final clean run leaves each block credited once. A
// third block, reorganised away, is orphaned through the same kills, once.
func TestUnlockerCrash(t *testing.T) { forEachNode(t, testUnlockerCrash) }

func testUnlockerCrash(t *testing.T, nodeKind string) {
	e := newEnv(t, nodeKind)
	e.recordShares("A", 3.0, "B", 1.0)
	matured := e.mineFound()
	e.chain.Generate(99) // matured: 100 confirmations
	e.recordShares("B", 2.0)
	young := e.mineFound() // 1 confirmation
	want := map[string]int64{"A": 3_712_500_000, "B": 1_237_500_000}
	kills := 0
	for n := 1; ; n++ {
		killedAny := false
		for _, when := range []string{"before", "after"} {
			if !e.runChild(fmt.Sprintf("%s:%d", when, n)) {
				continue
			}
			killedAny = true
			kills++
			got := e.balances()
			credited := e.status(matured.Hash) == payouts.StatusCredited
			switch {
			case credited && !reflect.DeepEqual(got, want):
				t.Fatalf("killed %s call %d: credited, balances %v, want %v", when, n, got, want)
			case !credited && len(got) != 0:
				t.Fatalf("killed %s call %d: not credited, yet balances %v", when, n, got)
			}
		}
		if !killedAny {
			break // the step makes fewer than n ledger calls now
		}
	}
	// UnconfirmedBlocks, Contributions, CreditBlock: each killed before and
	// after at least once.
	t.Logf("%d kills across the step", kills)
	if kills < 6 {
		t.Errorf("only %d kills; the step was not interrupted everywhere", kills)
	}
	if e.runChild("") {
		t.Fatal("clean child killed")
	}
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances = %v, want %v", got, want)
	}
	if f := e.fees(); f != 50_000_000 {
		t.Errorf("fees = %d, want 50000000", f)
	}
	if st := e.status(matured.Hash); st != payouts.StatusCredited {
		t.Errorf("matured block %v", st)
	}
	if st := e.status(young.Hash); st != payouts.StatusImmature {
		t.Errorf("young block %v", st)
	}
	// Let the young block mature through more crashes, then check both.
	e.chain.Generate(99)
	for _, at := range []string{"before:3", "after:3", "after:2"} {
		e.runChild(at)
	}
	e.runChild("")
	// PPLNS: the window is not reset by a block, so the second block's
	// snapshot holds A 3 and B 1+2: 4.95e9 split evenly.
	want["A"] += 2_475_000_000
	want["B"] += 2_475_000_000
	if got := e.balances(); !reflect.DeepEqual(got, want) {
		t.Errorf("balances after second block = %v, want %v", got, want)
	}
	if f := e.fees(); f != 100_000_000 {
		t.Errorf("fees = %d", f)
	}
	for _, h := range []chainhash.Hash{matured.Hash, young.Hash} {
		ctx := context.Background()
		b, _ := e.store.Block(ctx, h)
		contrib, _ := e.store.Contributions(ctx, h)
		credits, _ := e.store.BlockCredits(ctx, h)
		if err := payouts.AuditCredit(b, contrib, credits); err != nil {
			t.Error(err)
		}
	}

	// A third block is reorganised away (invalidateblock, then a longer
	// chain past OrphanDepth): the step that orphans it is killed before and
	// after each of its ledger calls (list, orphan). At every point the
	// block is immature or orphaned and nothing is credited; the clean runs
	// after it leave it orphaned, moved once: the state machine refuses any
	// later credit or orphaning.
	e.recordShares("A", 1.0)
	gone := e.mineFound()
	e.runChild("") // immature, 1 confirmation
	if st := e.status(gone.Hash); st != payouts.StatusImmature {
		t.Fatalf("block to be orphaned is %v", st)
	}
	e.invalidate(gone.Hash)
	e.mineReplacement(uint32(payouts.DefaultOrphanDepth) + 1)
	for _, at := range []string{"before:1", "after:1", "before:2", "after:2"} {
		if !e.runChild(at) {
			t.Fatalf("child not killed at %s", at)
		}
		if st := e.status(gone.Hash); st != payouts.StatusImmature && st != payouts.StatusOrphaned {
			t.Fatalf("killed at %s: block is %v", at, st)
		}
		if got := e.balances(); !reflect.DeepEqual(got, want) {
			t.Fatalf("killed at %s: balances %v, want %v", at, got, want)
		}
	}
	e.runChild("")
	e.runChild("")
	if st := e.status(gone.Hash); st != payouts.StatusOrphaned {
		t.Errorf("reorganised block is %v", st)
	}
	if got, f := e.balances(), e.fees(); !reflect.DeepEqual(got, want) || f != 100_000_000 {
		t.Errorf("after the orphan: balances %v fees %d, want %v and 100000000", got, f, want)
	}
	ctx := context.Background()
	if list, err := e.store.UnconfirmedBlocks(ctx); err != nil || len(list) != 0 {
		t.Errorf("unconfirmed blocks %v, %v", list, err)
	}
	if ok, err := e.store.OrphanBlock(ctx, gone.Hash, time.Now()); ok || !errors.Is(err, blocks.ErrIllegalTransition) {
		t.Errorf("orphaned twice: %v, %v", ok, err)
	}
	if ok, err := e.store.CreditBlock(ctx, payouts.BlockCredit{Hash: gone.Hash, Time: time.Now()}); ok || !errors.Is(err, blocks.ErrIllegalTransition) {
		t.Errorf("credited after orphaned: %v, %v", ok, err)
	}
	if ok, err := e.store.OrphanBlock(ctx, matured.Hash, time.Now()); ok || !errors.Is(err, blocks.ErrIllegalTransition) {
		t.Errorf("orphaned after credited: %v, %v", ok, err)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
