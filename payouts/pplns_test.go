package payouts

import (
	"errors"
	"math/big"
	"reflect"
	"strconv"
	"testing"
)

func u(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad units " + s)
	}
	return v
}

func ws(addr, units string) WindowShare { return WindowShare{Address: addr, Units: u(units)} }
func ct(addr, units string) Contribution {
	return Contribution{Address: addr, Units: u(units)}
}

func TestSumWindow(t *testing.T) {
	tests := []struct {
		name   string
		window []WindowShare // newest first
		n      *big.Int
		want   []Contribution
		total  string
	}{
		{
			name:   "window shorter than N counts everything",
			window: []WindowShare{ws("A", "300000000"), ws("B", "100000000"), ws("A", "200000000")},
			n:      u("1000000000"),
			want:   []Contribution{ct("A", "500000000"), ct("B", "100000000")},
			total:  "600000000",
		},
		{
			name:   "oldest share crossing N counts partially",
			window: []WindowShare{ws("A", "400000000"), ws("B", "400000000"), ws("C", "400000000"), ws("D", "400000000")},
			n:      u("1000000000"),
			want:   []Contribution{ct("A", "400000000"), ct("B", "400000000"), ct("C", "200000000")},
			total:  "1000000000",
		},
		{
			name:   "N on a share boundary drops the older shares",
			window: []WindowShare{ws("A", "5"), ws("B", "5"), ws("C", "5")},
			n:      u("10"),
			want:   []Contribution{ct("A", "5"), ct("B", "5")},
			total:  "10",
		},
		{
			name: "fractional difficulties",
			// 0.5, 0.25 and 0.125 difficulty.
			window: []WindowShare{ws("A", "50000000"), ws("B", "25000000"), ws("A", "12500000")},
			want:   []Contribution{ct("A", "62500000"), ct("B", "25000000")},
			total:  "87500000",
		},
		{
			name:   "sums beyond int64 stay exact",
			window: []WindowShare{ws("A", "9223372036854775807"), ws("A", "9223372036854775807"), ws("B", "1")},
			n:      u("18446744073709551615"),
			want:   []Contribution{ct("A", "18446744073709551614"), ct("B", "1")},
			total:  "18446744073709551615",
		},
		{name: "empty window", want: []Contribution{}, total: "0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := SumWindow(tc.window, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("contributions = %v, want %v", got, tc.want)
			}
			if total.String() != tc.total {
				t.Errorf("total = %s, want %s", total, tc.total)
			}
		})
	}
}

func TestSumWindowRejectsBadEntries(t *testing.T) {
	for _, w := range [][]WindowShare{
		{ws("A", "-1")},
		{ws("", "1")},
		{{Address: "A"}},
	} {
		if _, _, err := SumWindow(w, nil); !errors.Is(err, ErrInvalidSplit) {
			t.Errorf("SumWindow(%v) error = %v, want ErrInvalidSplit", w, err)
		}
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name    string
		reward  int64
		feeBP   int64
		contrib []Contribution
		fee     int64
		credits []Credit
	}{
		{
			name: "one miner, no fee", reward: 5_000_000_000,
			contrib: []Contribution{ct("A", "123")},
			credits: []Credit{{"A", 5_000_000_000}},
		},
		{
			name: "one miner, 1% fee", reward: 5_000_000_000, feeBP: 100,
			contrib: []Contribution{ct("A", "123")},
			fee:     50_000_000, credits: []Credit{{"A", 4_950_000_000}},
		},
		{
			name: "two miners 3:1 with 1% fee", reward: 5_000_000_000, feeBP: 100,
			contrib: []Contribution{ct("B", "100000000"), ct("A", "300000000")},
			fee:     50_000_000, credits: []Credit{{"A", 3_712_500_000}, {"B", 1_237_500_000}},
		},
		{
			name: "fee rounds down, the rest goes to miners", reward: 999, feeBP: 250,
			contrib: []Contribution{ct("A", "1")},
			fee:     24, credits: []Credit{{"A", 975}},
		},
		{
			name: "remainder to the largest contributor", reward: 10,
			// 10/7=1.43, 20/7=2.86, 40/7=5.71: floors pay 8, 2 sat left for C.
			contrib: []Contribution{ct("A", "1"), ct("B", "2"), ct("C", "4")},
			credits: []Credit{{"A", 1}, {"B", 2}, {"C", 7}},
		},
		{
			name: "remainder tie goes to the first address", reward: 100,
			contrib: []Contribution{ct("C", "1"), ct("B", "1"), ct("A", "1")},
			credits: []Credit{{"A", 34}, {"B", 33}, {"C", 33}},
		},
		{
			name: "fractional difficulties 0.5, 0.25, 0.3", reward: 1_000_000,
			// 1e6×5/10.5=476190.48, ×2.5/10.5=238095.24, ×3/10.5=285714.29.
			contrib: []Contribution{ct("A", "50000000"), ct("B", "25000000"), ct("C", "30000000")},
			credits: []Credit{{"A", 476_191}, {"B", 238_095}, {"C", 285_714}},
		},
		{
			name: "many miners with 2% fee", reward: 5_000_000_000, feeBP: 200,
			// 4.9e9×k/55 for k=1..10; the fractions (k×0.0909) add up to 5 sat, for a9.
			contrib: []Contribution{
				ct("a0", "1"), ct("a1", "2"), ct("a2", "3"), ct("a3", "4"), ct("a4", "5"),
				ct("a5", "6"), ct("a6", "7"), ct("a7", "8"), ct("a8", "9"), ct("a9", "10"),
			},
			fee: 100_000_000,
			credits: []Credit{
				{"a0", 89_090_909}, {"a1", 178_181_818}, {"a2", 267_272_727}, {"a3", 356_363_636},
				{"a4", 445_454_545}, {"a5", 534_545_454}, {"a6", 623_636_363}, {"a7", 712_727_272},
				{"a8", 801_818_181}, {"a9", 890_909_095},
			},
		},
		{
			name: "duplicate addresses are merged", reward: 40,
			contrib: []Contribution{ct("A", "1"), ct("B", "2"), ct("A", "1")},
			credits: []Credit{{"A", 20}, {"B", 20}},
		},
		{
			name: "a dust contributor earning 0 sat is left out", reward: 10,
			contrib: []Contribution{ct("A", "1000000000000"), ct("B", "1")},
			credits: []Credit{{"A", 10}},
		},
		{
			name: "empty window: everything to the fee account", reward: 5_000_000_000, feeBP: 100,
			fee: 5_000_000_000,
		},
		{
			name: "100% fee", reward: 5_000_000_000, feeBP: 10_000,
			contrib: []Contribution{ct("A", "1")},
			fee:     5_000_000_000,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Split(tc.reward, tc.feeBP, tc.contrib)
			if err != nil {
				t.Fatal(err)
			}
			want := Allocation{Reward: tc.reward, Fee: tc.fee, Credits: tc.credits}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Split = %+v\nwant    %+v", got, want)
			}
		})
	}
}

func TestSplitRejectsBadInput(t *testing.T) {
	tests := []struct {
		name    string
		reward  int64
		feeBP   int64
		contrib []Contribution
	}{
		{"negative reward", -1, 0, nil},
		{"fee above 100%", 1, 10_001, nil},
		{"negative fee", 1, -1, nil},
		{"empty address", 1, 0, []Contribution{ct("", "1")}},
		{"negative units", 1, 0, []Contribution{ct("A", "-1")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Split(tc.reward, tc.feeBP, tc.contrib); !errors.Is(err, ErrInvalidSplit) {
				t.Errorf("error = %v, want ErrInvalidSplit", err)
			}
		})
	}
}

// FuzzSplit checks the invariants on arbitrary input: nothing is created or
// lost, nobody gets a negative amount, credits stay sorted.
func FuzzSplit(f *testing.F) {
	f.Add(int64(5_000_000_000), int64(100), uint64(3), uint64(1), uint64(0))
	f.Add(int64(10), int64(0), uint64(1), uint64(2), uint64(4))
	f.Add(int64(0), int64(10_000), uint64(0), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, reward, feeBP int64, a, b, c uint64) {
		var contrib []Contribution
		for i, v := range []uint64{a, b, c} {
			contrib = append(contrib, Contribution{Address: "addr" + strconv.Itoa(i), Units: new(big.Int).SetUint64(v)})
		}
		got, err := Split(reward, feeBP, contrib)
		if reward < 0 || feeBP < 0 || feeBP > MaxFeeBasisPoints {
			if err == nil {
				t.Fatal("bad input accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		sum := got.Fee
		for i, cr := range got.Credits {
			if cr.Amount <= 0 {
				t.Fatalf("credit %v", cr)
			}
			if i > 0 && got.Credits[i-1].Address >= cr.Address {
				t.Fatalf("credits not sorted: %v", got.Credits)
			}
			sum += cr.Amount
		}
		if sum != reward || got.Fee < 0 {
			t.Fatalf("fee %d + credits = %d, want reward %d", got.Fee, sum, reward)
		}
	})
}

func TestAuditCredit(t *testing.T) {
	contrib := []Contribution{ct("A", "300000000"), ct("B", "100000000")}
	ok := Block{Status: StatusCredited, Reward: 5_000_000_000, Fee: 50_000_000}
	good := map[string]int64{"A": 3_712_500_000, "B": 1_237_500_000}
	if err := AuditCredit(ok, contrib, good); err != nil {
		t.Fatalf("good credit: %v", err)
	}
	empty := Block{Status: StatusCredited, Reward: 100, Fee: 100}
	if err := AuditCredit(empty, nil, map[string]int64{}); err != nil {
		t.Errorf("empty snapshot: %v", err)
	}
	bad := []struct {
		name    string
		b       Block
		credits map[string]int64
	}{
		{"not credited", Block{Status: StatusImmature, Reward: 5_000_000_000, Fee: 50_000_000}, good},
		{"sum off by one", ok, map[string]int64{"A": 3_712_500_001, "B": 1_237_500_000}},
		{"moved between miners", ok, map[string]int64{"A": 3_712_499_999, "B": 1_237_500_001}},
		{"missing miner", Block{Status: StatusCredited, Reward: 5_000_000_000, Fee: 1_287_500_000}, map[string]int64{"A": 3_712_500_000}},
		{"unknown miner", ok, map[string]int64{"A": 3_712_500_000, "C": 1_237_500_000}},
	}
	for _, tc := range bad {
		if err := AuditCredit(tc.b, contrib, tc.credits); !errors.Is(err, ErrCreditMismatch) {
			t.Errorf("%s: err = %v, want ErrCreditMismatch", tc.name, err)
		}
	}
}
