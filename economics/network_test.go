package economics

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
)

func near(t *testing.T, name string, got, want, rel float64) {
	t.Helper()
	if math.Abs(got-want) > rel*math.Abs(want) {
		t.Fatalf("%s = %.12g, want %.12g (±%g relative)", name, got, want, rel)
	}
}

// The pool's published example: subsidy 6.25 BTC, D = 21,448,277,761,059,
// no fees → 0.0058619 BTC per PH/s per day.
func TestHashpriceVector(t *testing.T) {
	hp := Hashprice(21448277761059, 625_000_000) // sats per TH/s per day
	btcPerPH := hp * 1000 / btcutil.SatoshiPerBitcoin
	if math.Round(btcPerPH*1e7)/1e7 != 0.0058619 {
		t.Fatalf("hashprice = %.10f BTC/PH/day, want 0.0058619", btcPerPH)
	}
}

func TestNetworkFormulas(t *testing.T) {
	cases := []struct {
		name      string
		got, want float64
	}{
		// 10¹²·86400/2³² by hand: 8.64e16 / 4294967296.
		{"E at D=1", ExpectedBlocksPerTHDay(1), 20116567.611694336},
		{"E at D=2", ExpectedBlocksPerTHDay(2), 20116567.611694336 / 2},
		// 2³²/600.
		{"implied hashrate D=1", ImpliedNetworkHashrate(1), 7158278.826666667},
		{"work per share d=1", WorkPerShare(1), 4294967296},
		{"work per share d=1024", WorkPerShare(1024), 4398046511104},
		// 3.125 BTC + 0.25 BTC fees at D = 10¹⁴: E = 8.64e16/(1e14·2³²).
		{"hashprice with fees", Hashprice(1e14, 337_500_000), 8.64e16 / (1e14 * 4294967296) * 337_500_000},
		{"hashprice D=0 is 0", Hashprice(0, 1), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { near(t, tc.name, tc.got, tc.want, 1e-12) })
	}
}

func TestDifficultyFromBits(t *testing.T) {
	cases := []struct {
		bits uint32
		want float64
	}{
		{0x1d00ffff, 1},
		{0x1b0404cb, 16307.420938523983}, // the Bitcoin wiki's example
		{0x207fffff, 4.6565423739069247e-10},
		{0x1b04864c, 14484.162361225399}, // mainnet block 100,000
	}
	for _, tc := range cases {
		got, err := DifficultyFromBits(tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		near(t, "D", got, tc.want, 1e-9)
	}
	for _, bits := range []uint32{0, 0x1d800001, 0x01000000} {
		if _, err := DifficultyFromBits(bits); err == nil {
			t.Errorf("bits %08x: no error", bits)
		}
	}
}

func TestSubsidy(t *testing.T) {
	main, reg := &chaincfg.MainNetParams, &chaincfg.RegressionNetParams
	cases := []struct {
		name   string
		height int64
		params *chaincfg.Params
		want   btcutil.Amount
	}{
		{"mainnet genesis", 0, main, 50e8},
		{"mainnet last of era 0", 209999, main, 50e8},
		{"mainnet first halving", 210000, main, 25e8},
		{"mainnet 2024 halving", 840000, main, 3.125e8},
		{"mainnet 2028 halving", 1050000, main, 1.5625e8},
		{"mainnet 33 halvings", 33 * 210000, main, 0},
		{"mainnet 64 halvings", 64 * 210000, main, 0},
		{"regtest 149", 149, reg, 50e8},
		{"regtest 150", 150, reg, 25e8},
		{"regtest 300", 300, reg, 12.5e8},
		{"negative height", -1, main, 0},
	}
	for _, tc := range cases {
		if got := Subsidy(tc.height, tc.params); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestObservedNetworkHashrate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	blocks := []BlockHeader{{1, t0, 0x1d00ffff}, {2, t0.Add(600 * time.Second), 0x1d00ffff}, {3, t0.Add(1200 * time.Second), 0x1d00ffff}}
	got, err := ObservedNetworkHashrate(blocks)
	if err != nil {
		t.Fatal(err)
	}
	// 2 blocks of 2³² hashes in 1200 s, times (n−1)/n = 1/2.
	near(t, "observed", got, 4294967296.0*2/1200/2, 1e-12)
	if _, err := ObservedNetworkHashrate(blocks[:2]); !errors.Is(err, ErrTooFewBlocks) {
		t.Fatalf("2 blocks: %v", err)
	}
	same := []BlockHeader{{1, t0, 0x1d00ffff}, {2, t0, 0x1d00ffff}, {3, t0, 0x1d00ffff}}
	if _, err := ObservedNetworkHashrate(same); err == nil {
		t.Fatal("zero span: no error")
	}
}

// The (n−1) correction makes the estimator unbiased: simulated Poisson
// block arrivals at a known hashrate average to it within 1 %.
func TestObservedNetworkHashrateUnbiased(t *testing.T) {
	rng := newRand(7)
	const n, trials = 10, 20000
	var sum float64
	for range trials {
		ts := time.Unix(1_700_000_000, 0)
		blocks := []BlockHeader{{0, ts, 0x1d00ffff}}
		for i := 1; i <= n; i++ {
			ts = ts.Add(time.Duration(rng.ExpFloat64() * 600 * float64(time.Second)))
			blocks = append(blocks, BlockHeader{int64(i), ts, 0x1d00ffff})
		}
		h, err := ObservedNetworkHashrate(blocks)
		if err != nil {
			t.Fatal(err)
		}
		sum += h
	}
	near(t, "mean observed", sum/trials, ImpliedNetworkHashrate(1), 0.01)
}

func TestForecastRetarget(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	main := &chaincfg.MainNetParams
	const start = 2016 * 5
	// 100 blocks after the epoch's first in 30,000 s: twice the pace.
	r := ForecastRetarget(1000, start+101, t0, t0.Add(30000*time.Second), main)
	if !r.Available || r.Blocks != 100 || r.EpochStart != start || r.NextHeight != start+2016 {
		t.Fatalf("forecast %+v", r)
	}
	near(t, "next", r.NextDifficulty, 2000, 1e-12)
	near(t, "low", r.Low, 2000*(1-z95/10), 1e-12)
	near(t, "high", r.High, 2000*(1+z95/10), 1e-12)
	near(t, "change", r.ChangePercent, 100, 1e-12)
	// 1915 blocks left to find at 300 s each.
	if want := t0.Add(30000*time.Second + 1915*300*time.Second); !r.ETA.Equal(want) {
		t.Fatalf("ETA %v, want %v", r.ETA, want)
	}
	// Clamped to 4·D when blocks come 10× faster, and to D/4 when slower.
	fast := ForecastRetarget(1000, start+101, t0, t0.Add(6000*time.Second), main)
	if fast.NextDifficulty != 4000 || fast.High != 4000 {
		t.Fatalf("fast: %+v", fast)
	}
	slow := ForecastRetarget(1000, start+101, t0, t0.Add(600000*time.Second), main)
	if slow.NextDifficulty != 250 || slow.Low != 250 {
		t.Fatalf("slow: %+v", slow)
	}
	// No estimate before k ≥ 10: 9 blocks after the first.
	if early := ForecastRetarget(1000, start+10, t0, t0.Add(5400*time.Second), main); early.Available || early.Reason == "" {
		t.Fatalf("k=9: %+v", early)
	}
	if ok := ForecastRetarget(1000, start+11, t0, t0.Add(6000*time.Second), main); !ok.Available || ok.Blocks != 10 {
		t.Fatalf("k=10: %+v", ok)
	}
	if reg := ForecastRetarget(1000, start+500, t0, t0.Add(time.Hour), &chaincfg.RegressionNetParams); reg.Available {
		t.Fatalf("regtest retargets? %+v", reg)
	}
}
