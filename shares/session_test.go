package shares

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg/chainhash"

	"github.com/lode-pool/lode/blocktemplate"
)

func newTestSession(t *testing.T, cfg Config, mask uint32) (*Validator, *Session) {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := v.NewSession([]byte{1, 2, 3, 4}, mask)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

func mustWork(t *testing.T, v *Validator, j *blocktemplate.Job) *Work {
	t.Helper()
	w, err := v.NewWork(j)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestSubmitMatchesReference compares the hot path with the straightforward
// construction (blocktemplate's Job.Header and chainhash) for random
// coinbase layouts around the block boundaries, branch lengths and submits.
func TestSubmitMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	v, _ := New(Config{})
	for iter := 0; iter < 400; iter++ {
		en1 := make([]byte, 1+rng.IntN(blocktemplate.MaxExtranonce1Size))
		en2Size := 1 + rng.IntN(blocktemplate.MaxExtranonce2Size)
		j := benchJob(fmt.Sprint(iter), rng.IntN(14))
		j.Extranonce1Size = len(en1)
		j.Extranonce2Size = en2Size
		j.Coinb1 = make([]byte, 1+rng.IntN(200))
		j.Coinb2 = make([]byte, 1+rng.IntN(300))
		for _, b := range [][]byte{en1, j.Coinb1, j.Coinb2} {
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
		}
		for i := range j.MerkleBranch {
			for k := range j.MerkleBranch[i] {
				j.MerkleBranch[i][k] = byte(rng.Uint32())
			}
		}
		for k := range j.PrevHash {
			j.PrevHash[k] = byte(rng.Uint32())
		}
		w := mustWork(t, v, j)
		mask := uint32(0x1fffe000)
		s, err := v.NewSession(en1, mask)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetDifficulty(1e-12); err != nil {
			t.Fatal(err)
		}
		s.AddJob(w)
		sub := Submission{JobID: j.ID, Extranonce2Len: en2Size, NTime: j.NTime + uint32(rng.IntN(7200)),
			Nonce: rng.Uint32(), VersionBits: rng.Uint32() & mask, HasVersionBits: rng.IntN(2) == 0}
		for i := 0; i < en2Size; i++ {
			sub.Extranonce2[i] = byte(rng.Uint32())
		}
		res, err := submitS(s, &sub)
		if err != nil {
			t.Fatalf("iter %d: %v", iter, err)
		}
		version := j.Version
		if sub.HasVersionBits {
			version = j.Version&^mask | sub.VersionBits
		}
		want, err := j.Header(en1, sub.Extranonce2Bytes(), version, sub.NTime, sub.Nonce)
		if err != nil {
			t.Fatal(err)
		}
		if res.Header != want {
			t.Fatalf("iter %d (coinb1 %d, en1 %d, en2 %d, coinb2 %d, branch %d):\n got %x\nwant %x",
				iter, len(j.Coinb1), len(en1), en2Size, len(j.Coinb2), len(j.MerkleBranch), res.Header, want)
		}
		if h := chainhash.DoubleHashH(want[:]); res.Hash != h {
			t.Fatalf("iter %d: hash %v want %v", iter, res.Hash, h)
		}
		if exact := blocktemplate.HashDifficulty(&res.Hash); !closeTo(res.HashDifficulty, exact) {
			t.Fatalf("iter %d: difficulty %v want %v", iter, res.HashDifficulty, exact)
		}
		if res.Block != (blocktemplate.HashToBig(&res.Hash).Cmp(j.NetworkTarget) <= 0) {
			t.Fatalf("iter %d: block flag wrong", iter)
		}
	}
}

func TestSubmitRejections(t *testing.T) {
	v, s := newTestSession(t, Config{MaxNTimeAhead: 600 * 1e9}, 0x1fffe000)
	j := benchJob("a", 2)
	j.MinTime = j.NTime - 1000
	s.AddJob(mustWork(t, v, j))
	if err := s.SetDifficulty(1e-12); err != nil {
		t.Fatal(err)
	}
	// Re-sending the job picks up the new difficulty.
	s.AddJob(mustWork(t, v, j))
	ok := func() []string { return []string{"w", "a", "0000000000000001", "66e39966", "00000001"} }
	with := func(i int, val string) []string { p := ok(); p[i] = val; return p }
	hex := func(v uint32) string { return fmt.Sprintf("%08x", v) }
	tests := []struct {
		name   string
		params []string
		want   error
	}{
		{"unknown job", with(1, "zz"), ErrJobNotFound},
		{"short extranonce2", with(2, "00000001"), ErrBadExtranonce2},
		{"ntime before mintime", with(3, hex(j.MinTime-1)), ErrBadNTime},
		{"ntime too far ahead", with(3, hex(j.NTime+601)), ErrBadNTime},
		{"bits outside mask", append(ok(), "00001000"), ErrBadVersionBits},
		{"malformed", with(4, "xyz"), ErrMalformed},
		{"ntime at mintime", with(3, hex(j.MinTime)), nil},
		{"ntime at limit", with(3, hex(j.NTime+600)), nil},
		{"rolled", append(ok(), "1fffe000"), nil},
		{"plain", ok(), nil},
		{"plain again", ok(), ErrDuplicateShare},
		{"rolled again", append(ok(), "1fffe000"), ErrDuplicateShare},
		{"other version is not a duplicate", append(ok(), "00002000"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := submitP(s, tc.params)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestJobLifetime(t *testing.T) {
	v, s := newTestSession(t, Config{MaxJobs: 3}, 0)
	if err := s.SetDifficulty(1e-12); err != nil {
		t.Fatal(err)
	}
	job := func(id string, clean bool) *Work {
		j := benchJob(id, 1)
		j.CleanJobs = clean
		return mustWork(t, v, j)
	}
	// The jobs carry identical work, so each id submits its own nonce: the
	// same share under two ids is a duplicate (TestDuplicateAcrossJobs).
	submit := func(id string) error {
		_, err := submitP(s, []string{"w", id, "0000000000000001", "66e39966", "0000000" + id})
		return err
	}
	s.AddJob(job("1", true))
	s.AddJob(job("2", false))
	s.AddJob(job("3", false))
	for _, id := range []string{"1", "2", "3"} {
		if err := submit(id); err != nil {
			t.Fatalf("job %s: %v", id, err)
		}
	}
	s.AddJob(job("4", false)) // MaxJobs 3: job 1 ages out
	if err := submit("1"); err != ErrJobNotFound {
		t.Fatalf("aged-out job: %v", err)
	}
	if err := submit("2"); err != ErrDuplicateShare {
		t.Fatalf("live job keeps its filter: %v", err)
	}
	s.AddJob(job("5", true)) // clean: everything before is stale
	for _, id := range []string{"2", "3", "4"} {
		if err := submit(id); err != ErrJobNotFound {
			t.Fatalf("job %s after clean: %v", id, err)
		}
	}
	if err := submit("5"); err != nil {
		t.Fatal(err)
	}
	if got := len(s.jobs) + len(s.spare); got > 2*3 {
		t.Fatalf("%d job entries kept, want ≤ 6", got)
	}
	s.DropJobs()
	if err := submit("5"); err != ErrJobNotFound {
		t.Fatalf("after DropJobs: %v", err)
	}
	if s.Work("5") != nil {
		t.Fatal("Work of a dropped job")
	}
}

// TestDuplicateAcrossJobs: a template refresh that changed nothing gives a
// new job id with the same work; the same share submitted under each id is
// one share, credited once. Jobs with different work keep separate filters.
func TestDuplicateAcrossJobs(t *testing.T) {
	v, s := newTestSession(t, Config{MaxJobs: 4}, 0)
	if err := s.SetDifficulty(1e-12); err != nil {
		t.Fatal(err)
	}
	params := func(id string) []string {
		return []string{"w", id, "0000000000000001", "66e39966", "00000001"}
	}
	first := benchJob("a", 2)
	s.AddJob(mustWork(t, v, first))
	refresh := benchJob("b", 2)
	refresh.CleanJobs = false
	s.AddJob(mustWork(t, v, refresh))
	other := benchJob("c", 2)
	other.CleanJobs = false
	other.Coinb2[0] ^= 1 // new transactions: different work
	s.AddJob(mustWork(t, v, other))

	if _, err := submitP(s, params("a")); err != nil {
		t.Fatalf("first submit: %v", err)
	}
	if _, err := submitP(s, params("b")); err != ErrDuplicateShare {
		t.Fatalf("same share under a refreshed job id: %v, want duplicate", err)
	}
	if _, err := submitP(s, params("c")); err != nil {
		t.Fatalf("same miner fields on different work: %v", err)
	}
	// A fresh share under the refreshed id is fine, and then a duplicate
	// under the first id.
	fresh := []string{"w", "b", "0000000000000002", "66e39966", "00000001"}
	if _, err := submitP(s, fresh); err != nil {
		t.Fatalf("fresh share under b: %v", err)
	}
	fresh[1] = "a"
	if _, err := submitP(s, fresh); err != ErrDuplicateShare {
		t.Fatalf("b's share under a: %v, want duplicate", err)
	}
}

// TestDifficultyChange checks which difficulty a share is judged and
// credited at when set_difficulty comes between a job and its shares, and
// that fractional difficulties down to 1e-8 are exact.
func TestDifficultyChange(t *testing.T) {
	v, s := newTestSession(t, Config{}, 0)
	w := mustWork(t, v, benchJob("a", 0))
	if err := s.SetDifficulty(1e-8); err != nil {
		t.Fatal(err)
	}
	s.AddJob(w)
	// Find shares by brute force and compare with the exact rule.
	exact1e8 := blocktemplate.DifficultyToTarget(1e-8)
	var accepted, rejected int
	for nonce := uint32(0); nonce < 3000; nonce++ {
		res, err := submitP(s, []string{"w", "a", "0000000000000001", "66e39966", fmt.Sprintf("%08x", nonce)})
		meets := blocktemplate.HashToBig(&res.Hash).Cmp(exact1e8) <= 0
		switch {
		case err == nil && meets:
			accepted++
			if res.Difficulty != 1e-8 {
				t.Fatalf("credited %v", res.Difficulty)
			}
		case err == ErrLowDifficulty && !meets:
			rejected++
		default:
			t.Fatalf("nonce %d: err %v, exact compare says %v", nonce, err, meets)
		}
	}
	if accepted == 0 || rejected == 0 {
		t.Fatalf("accepted %d rejected %d: the test does not exercise both sides", accepted, rejected)
	}

	// A lower difficulty set after the job applies at once; a higher one
	// waits for the next job.
	if err := s.SetDifficulty(1e-12); err != nil {
		t.Fatal(err)
	}
	res, err := submitP(s, []string{"w", "a", "0000000000000002", "66e39966", "00000000"})
	if err != nil || res.Difficulty != 1e-12 && res.Difficulty != 1e-8 {
		t.Fatalf("after lowering: %v credited %v", err, res.Difficulty)
	}
	s.AddJob(w) // re-sent: now judged at 1e-12
	if err := s.SetDifficulty(1e6); err != nil {
		t.Fatal(err)
	}
	if _, err := submitP(s, []string{"w", "a", "0000000000000003", "66e39966", "00000000"}); err != nil {
		t.Fatalf("old job after raising: %v", err)
	}
	s.AddJob(mustWork(t, v, benchJob("b", 0)))
	if _, err := submitP(s, []string{"w", "b", "0000000000000003", "66e39966", "00000000"}); err != ErrLowDifficulty {
		t.Fatalf("new job after raising: %v", err)
	}
	for _, bad := range []float64{0, -1} {
		if err := s.SetDifficulty(bad); err == nil {
			t.Fatalf("SetDifficulty(%v) accepted", bad)
		}
	}
}

func TestConstructorsRejectBadInput(t *testing.T) {
	if _, err := New(Config{MaxJobs: -1}); err == nil {
		t.Fatal("negative MaxJobs accepted")
	}
	v, _ := New(Config{})
	if _, err := v.NewSession(make([]byte, 17), 0); err == nil {
		t.Fatal("17-byte extranonce1 accepted")
	}
	bad := []*blocktemplate.Job{nil, {}, func() *blocktemplate.Job { j := benchJob("x", 0); j.NetworkTarget = nil; return j }(),
		func() *blocktemplate.Job { j := benchJob("x", 0); j.Extranonce2Size = 0; return j }()}
	for i, j := range bad {
		if _, err := v.NewWork(j); err == nil {
			t.Fatalf("bad job %d accepted", i)
		}
	}
	// A session whose extranonce1 does not fit the job is an error, not a panic.
	s, _ := v.NewSession([]byte{1, 2}, 0)
	s.AddJob(mustWork(t, v, benchJob("x", 0)))
	if _, err := submitP(s, []string{"w", "x", "0000000000000001", "66e39966", "00000000"}); err == nil || Code(err) != 20 {
		t.Fatalf("extranonce1 size mismatch: %v", err)
	}
}

func TestDupSet(t *testing.T) {
	var d dupSet
	rng := rand.New(rand.NewPCG(9, 10))
	keys := make([][2]uint64, 5000)
	for i := range keys {
		keys[i] = [2]uint64{rng.Uint64() & 0xffff, rng.Uint64()} // many low-bit collisions
	}
	keys[17] = [2]uint64{}
	for round := 0; round < 2; round++ {
		for i, k := range keys {
			if d.insert(k) {
				t.Fatalf("round %d: key %d reported duplicate on first insert", round, i)
			}
		}
		for i, k := range keys {
			if !d.insert(k) {
				t.Fatalf("round %d: key %d not found", round, i)
			}
		}
		if d.len() != len(keys) {
			t.Fatalf("len %d want %d", d.len(), len(keys))
		}
		capBefore := len(d.slots)
		d.reset()
		if d.len() != 0 || len(d.slots) != capBefore {
			t.Fatal("reset lost capacity or kept keys")
		}
	}
}

func TestSubmitAllocs(t *testing.T) {
	v, s := newTestSession(t, Config{}, 0x1fffe000)
	if err := s.SetDifficulty(1e-12); err != nil {
		t.Fatal(err)
	}
	s.AddJob(mustWork(t, v, benchJob("a", 12)))
	params := []string{"w", "a", "0000000000000001", "66e39966", "00000000", "00002000"}
	var res Result
	// Warm the duplicate filter so its growth is not counted.
	for i := 0; i < 40; i++ {
		params[4] = fmt.Sprintf("%08x", 1000+i)
		_ = s.SubmitParams(params, &res)
	}
	params[4] = "00000000"
	allocs := testing.AllocsPerRun(20, func() {
		_ = s.SubmitParams(params, &res) // the first is accepted, then duplicates
		params[2] = "0000000000000002"
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per submit", allocs)
	}
}

// submitP and submitS return the Result by value, for test readability.
func submitP(s *Session, params []string) (Result, error) {
	var r Result
	err := s.SubmitParams(params, &r)
	return r, err
}

func submitS(s *Session, sub *Submission) (Result, error) {
	var r Result
	err := s.Submit(sub, &r)
	return r, err
}

func TestResultShare(t *testing.T) {
	v, s := newTestSession(t, Config{}, 0)
	if err := s.SetDifficulty(1e-12); err != nil {
		t.Fatal(err)
	}
	j := benchJob("a", 1)
	j.Height = 840000
	s.AddJob(mustWork(t, v, j))
	res, err := submitP(s, []string{"addr.rig", "a", "0000000000000001", "66e39966", "00000000"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	got := res.Share("addr.rig", "addr", "rig", now)
	want := Share{Worker: "addr.rig", Address: "addr", WorkerName: "rig", Difficulty: 1e-12,
		HashDifficulty: res.HashDifficulty, JobHeight: 840000, Time: now, Block: res.Block}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

// FuzzSubmit compares the hot path with the reference construction
// (Job.Header, chainhash) for arbitrary coinbase halves, extranonces,
// branch lengths and submit fields.
func FuzzSubmit(f *testing.F) {
	f.Add([]byte("coinb1"), []byte("coinb2"), []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8, 9, 10, 11, 12}, uint8(3), uint32(5), uint32(7), uint32(0x2000))
	f.Add(make([]byte, 64), make([]byte, 200), []byte{1}, []byte{2}, uint8(0), uint32(0), uint32(0), uint32(0))
	f.Add(make([]byte, 63), make([]byte, 1), make([]byte, 16), make([]byte, 16), uint8(12), uint32(7200), uint32(1), uint32(0x1fffe000))
	v, _ := New(Config{})
	f.Fuzz(func(t *testing.T, coinb1, coinb2, en1, en2 []byte, branch uint8, dt, nonce, vbits uint32) {
		if len(coinb1) == 0 || len(coinb2) == 0 || len(en1) > 16 || len(en2) == 0 || len(en2) > 16 {
			return
		}
		j := benchJob("f", int(branch%16))
		j.Coinb1, j.Coinb2 = coinb1, coinb2
		j.Extranonce1Size, j.Extranonce2Size = len(en1), len(en2)
		for i := range j.MerkleBranch {
			j.MerkleBranch[i] = chainhash.DoubleHashH(append(coinb2, byte(i)))
		}
		w, err := v.NewWork(j)
		if err != nil {
			t.Fatal(err)
		}
		s, err := v.NewSession(en1, 0x1fffe000)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SetDifficulty(1e-12); err != nil {
			t.Fatal(err)
		}
		s.AddJob(w)
		sub := Submission{JobID: "f", Extranonce2Len: len(en2), NTime: j.NTime + dt%8000, Nonce: nonce, VersionBits: vbits, HasVersionBits: true}
		copy(sub.Extranonce2[:], en2)
		var res Result
		err = s.Submit(&sub, &res)
		switch {
		case dt%8000 > 7200:
			if err != ErrBadNTime {
				t.Fatalf("ntime +%d: %v", dt%8000, err)
			}
			return
		case vbits&^0x1fffe000 != 0:
			if err != ErrBadVersionBits {
				t.Fatalf("bits %08x: %v", vbits, err)
			}
			return
		case err != nil:
			t.Fatal(err)
		}
		want, err := j.Header(en1, en2, j.Version|vbits, sub.NTime, nonce)
		if err != nil {
			t.Fatal(err)
		}
		if res.Header != want || res.Hash != chainhash.DoubleHashH(want[:]) {
			t.Fatalf("header %x\nwant   %x", res.Header, want)
		}
	})
}

// TestLimbsDifficulty compares the hot path's float difficulty with the
// exactly rounded quotient for hashes of every magnitude.
func TestLimbsDifficulty(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	exact := 0
	const n = 20000
	for i := 0; i < n; i++ {
		var h chainhash.Hash
		for k := range h {
			h[k] = byte(rng.Uint32())
		}
		// Clear a random number of leading (display-order) bytes.
		for k := 31; k >= 32-rng.IntN(32); k-- {
			h[k] = 0
		}
		got, want := HashDifficulty(&h), blocktemplate.HashDifficulty(&h)
		if got == want {
			exact++
		} else if math.Nextafter(got, want) != want {
			t.Fatalf("hash %v: %v, exact %v (more than one ulp)", h, got, want)
		}
	}
	if exact < n/2 {
		t.Fatalf("only %d of %d exact", exact, n)
	}
	var zero chainhash.Hash
	if !math.IsInf(HashDifficulty(&zero), 1) {
		t.Fatal("zero hash")
	}
	one := chainhash.Hash{1}
	if got, want := HashDifficulty(&one), blocktemplate.HashDifficulty(&one); got != want {
		t.Fatalf("hash 1: %v want %v", got, want)
	}
}

// A hash that meets the network target but not the share target (possible
// when the share difficulty is above the network's, as on regtest) is a
// block, and is credited at the network difficulty, the target it met: never
// at the session difficulty it did not meet (issue 10 item 5), which let a
// miner that raised its own difficulty take 1000× its share of a regtest
// PPLNS window.
func TestBlockOnlyHashCreditedAtNetworkDifficulty(t *testing.T) {
	v, s := newTestSession(t, Config{}, 0)
	j := benchJob("regtest", 1)
	j.Bits = 0x207fffff // regtest's limit: about every other hash is a block
	j.NetworkTarget = blocktemplate.CompactToTarget(j.Bits)
	w := mustWork(t, v, j)
	netDiff := blocktemplate.TargetToDifficulty(j.NetworkTarget)
	for round, sessionDiff := range []float64{1, 1e6} {
		if err := s.SetDifficulty(sessionDiff); err != nil {
			t.Fatal(err)
		}
		s.AddJob(w)
		blocks := 0
		for nonce := uint32(0); nonce < 64; nonce++ {
			res, err := submitP(s, []string{"w", "regtest", fmt.Sprintf("%016x", round+1), "66e39966", fmt.Sprintf("%08x", nonce)})
			meetsNet := blocktemplate.HashToBig(&res.Hash).Cmp(j.NetworkTarget) <= 0
			meetsShare := blocktemplate.HashToBig(&res.Hash).Cmp(blocktemplate.DifficultyToTarget(sessionDiff)) <= 0
			if err != nil && err != ErrLowDifficulty {
				t.Fatalf("nonce %d: %v", nonce, err)
			}
			if meetsShare {
				t.Fatalf("nonce %d meets difficulty %v: pick another vector", nonce, sessionDiff)
			}
			if !meetsNet {
				if err != ErrLowDifficulty {
					t.Fatalf("nonce %d: not a block, err %v", nonce, err)
				}
				continue
			}
			blocks++
			if err != nil || !res.Block || res.MeetsTarget {
				t.Fatalf("nonce %d: err %v block %v meets share target %v", nonce, err, res.Block, res.MeetsTarget)
			}
			// Regtest's difficulty is below the ledger's unit: one unit.
			if want := max(netDiff, MinCreditDifficulty); res.Difficulty != want {
				t.Fatalf("session difficulty %v: block-only hash credited %v, want the network difficulty %v (at least one unit, %v)",
					sessionDiff, res.Difficulty, netDiff, want)
			}
			if res.Difficulty >= sessionDiff {
				t.Fatalf("credited %v, not below the session difficulty %v the hash did not meet", res.Difficulty, sessionDiff)
			}
		}
		if blocks == 0 {
			t.Fatal("no block-only hash among the nonces: the test exercises nothing")
		}
	}
}
