package window

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
)

// The hashes below are written out byte by byte as docs/verify.md specifies
// them, independently of LeafNode and Parent.
func docLeaf(addr, first, last string, units uint64) ([32]byte, *big.Int) {
	var m []byte
	m = append(m, 0x00)
	for _, f := range []string{addr, first, last} {
		m = append(m, byte(len(f)>>8), byte(len(f)))
		m = append(m, f...)
	}
	var u [16]byte
	binary.BigEndian.PutUint64(u[8:], units)
	m = append(m, u[:]...)
	return sha256.Sum256(m), new(big.Int).SetUint64(units)
}

func docNode(lh [32]byte, ls *big.Int, rh [32]byte, rs *big.Int) ([32]byte, *big.Int) {
	var m []byte
	m = append(m, 0x01)
	var s [16]byte
	m = append(m, lh[:]...)
	ls.FillBytes(s[:])
	m = append(m, s[:]...)
	m = append(m, rh[:]...)
	rs.FillBytes(s[:])
	m = append(m, s[:]...)
	return sha256.Sum256(m), new(big.Int).Add(ls, rs)
}

func TestKnownTrees(t *testing.T) {
	a, sa := docLeaf("bcrt1qa", "i1:10", "i1:12", 300000000)
	b, sb := docLeaf("bcrt1qb", "i2:5", "i2:5", 150000000)
	c, sc := docLeaf("bcrt1qa", "i1:13", "i1:13", 1)
	d, sd := docLeaf("bcrt1qc", "i1:14", "i2:9", 7)
	ab, sab := docNode(a, sa, b, sb)
	cd, scd := docNode(c, sc, d, sd)
	abcd, sabcd := docNode(ab, sab, cd, scd)
	abc, sabc := docNode(ab, sab, c, sc) // c promoted from level 0
	leaves := []Leaf{
		{"bcrt1qa", "300000000", "i1:10", "i1:12"},
		{"bcrt1qb", "150000000", "i2:5", "i2:5"},
		{"bcrt1qa", "1", "i1:13", "i1:13"},
		{"bcrt1qc", "7", "i1:14", "i2:9"},
	}
	tests := []struct {
		name string
		n    int
		hash [32]byte
		sum  *big.Int
	}{
		{"one leaf is its own root", 1, a, sa},
		{"two leaves", 2, ab, sab},
		{"three leaves: the odd one is promoted", 3, abc, sabc},
		{"four leaves", 4, abcd, sabcd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Build(leaves[:tc.n])
			if err != nil {
				t.Fatal(err)
			}
			r := tr.Root()
			if r.Hash != tc.hash || r.Sum.Cmp(tc.sum) != 0 {
				t.Fatalf("root %s/%s, want %x/%s", r.Hash, r.Sum, tc.hash, tc.sum)
			}
		})
	}
	// A fixed vector (the four leaves above), also printed in docs/verify.md,
	// so another implementation can check itself against this one.
	tr, _ := Build(leaves)
	if got, want := tr.Root().Hash.String(), fmt.Sprintf("%x", abcd); got != want {
		t.Fatalf("vector root %s, want %s", got, want)
	}
	t.Logf("vector root %s sum %s", tr.Root().Hash, tr.Root().Sum)
}

func TestEmptyTree(t *testing.T) {
	tr, err := Build(nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := tr.Root(); r.Hash != (Hash{}) || r.Sum.Sign() != 0 {
		t.Fatalf("empty root %v", r)
	}
	if _, err := tr.Path(0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("path of an empty tree: %v", err)
	}
}

func TestLeafValidation(t *testing.T) {
	bad := []Leaf{
		{"", "1", "a:1", "a:1"},
		{"x", "", "a:1", "a:1"},
		{"x", "01", "a:1", "a:1"},
		{"x", "-1", "a:1", "a:1"},
		{"x", "1e3", "a:1", "a:1"},
		{"x", "340282366920938463463374607431768211456", "a:1", "a:1"}, // 2^128
		{strings.Repeat("x", MaxFieldBytes+1), "1", "a:1", "a:1"},
	}
	for i, l := range bad {
		if _, err := LeafNode(l); !errors.Is(err, ErrInvalid) {
			t.Errorf("leaf %d %.20q: err %v, want ErrInvalid", i, l.Address, err)
		}
	}
	if _, err := LeafNode(Leaf{"x", "340282366920938463463374607431768211455", "", ""}); err != nil {
		t.Fatalf("2^128-1 units: %v", err)
	}
	// Two leaves of 2^127 overflow 128 bits in their parent: an error, no wrap.
	half := new(big.Int).Lsh(big.NewInt(1), 127).String()
	if _, err := Build([]Leaf{{"x", half, "", ""}, {"y", half, "", ""}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("overflowing sum: %v", err)
	}
}

func TestDomainSeparation(t *testing.T) {
	// Moving bytes between fields changes the hash (length prefixes).
	x, _ := LeafNode(Leaf{"ab", "1", "c", "d"})
	y, _ := LeafNode(Leaf{"a", "1", "bc", "d"})
	if x.Hash == y.Hash {
		t.Fatal("fields are not delimited")
	}
}

func randomLeaves(r *rand.Rand, n int) []Leaf {
	addrs := []string{"bc1qalice", "bc1qbob", "bc1qcarol", "1Dave", "3Erin"}
	out := make([]Leaf, n)
	for i := range out {
		u := new(big.Int).Lsh(big.NewInt(r.Int64N(1<<40)+1), uint(r.IntN(40)))
		out[i] = Leaf{addrs[r.IntN(len(addrs))], u.String(), fmt.Sprintf("i%d:%d", r.IntN(3), i), fmt.Sprintf("i%d:%d", r.IntN(3), i+1)}
	}
	return out
}

func TestProofRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{1, 2, 3, 5, 8, 13, 64, 100, 257} {
		leaves := randomLeaves(r, n)
		tr, err := Build(leaves)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]*big.Int{}
		for _, l := range leaves {
			u, _ := ParseUnits(l.Units)
			if want[l.Address] == nil {
				want[l.Address] = new(big.Int)
			}
			want[l.Address].Add(want[l.Address], u)
		}
		for addr, units := range want {
			p, err := NewProof(tr, "00", addr)
			if err != nil {
				t.Fatal(err)
			}
			if p.Units != units.String() {
				t.Fatalf("n=%d %s: units %s, want %s", n, addr, p.Units, units)
			}
			// Through JSON, as lodectl verify proof reads it.
			b, _ := json.Marshal(p)
			q, err := ParseProof(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Verify(); err != nil {
				t.Fatalf("n=%d %s: %v", n, addr, err)
			}
		}
	}
}

func creditedProof(t *testing.T) *Proof {
	t.Helper()
	leaves := []Leaf{
		{"A", "600", "i:1", "i:1"}, {"B", "300", "i:2", "i:2"}, {"A", "99", "i:3", "i:4"}, {"C", "1", "j:1", "j:1"},
	}
	tr, err := Build(leaves)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProof(tr, "ff", "A")
	if err != nil {
		t.Fatal(err)
	}
	// reward 1001, fee 10: 991 × 699 / 1000 = 692.709 → 692; B 297.3 → 297; C 0.991 → 0;
	// leftover 991 − 989 = 2 to A, the largest contributor.
	p.Credited, p.Reward, p.Fee, p.Credit, p.Remainder, p.Contributors = true, 1001, 10, 694, 2, 3
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProofTampering(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(p *Proof)
		want   string
	}{
		{"leaf units", func(p *Proof) { p.Leaves[0].Leaf.Units = "601" }, "leads to root"},
		{"leaf sequence", func(p *Proof) { p.Leaves[1].Leaf.LastSeq = "i:5" }, "leads to root"},
		{"sibling sum", func(p *Proof) { p.Leaves[0].Path[0].Sum = "301" }, "leads to root"},
		{"sibling hash", func(p *Proof) { p.Leaves[0].Path[0].Hash[0] ^= 1 }, "leads to root"},
		{"index", func(p *Proof) { p.Leaves[0].Index = 1 }, "leads to root"},
		{"root", func(p *Proof) { p.Root[31] ^= 1 }, "leads to root"},
		{"total", func(p *Proof) { p.Total = "999" }, "sums to"},
		{"units claimed", func(p *Proof) { p.Units = "700" }, "address units"},
		{"credit", func(p *Proof) { p.Credit++ }, "credit 695 sat"},
		{"fee", func(p *Proof) { p.Fee = 20 }, "credit 694 sat"},
		{"remainder too large", func(p *Proof) { p.Remainder, p.Credit = 3, 695 }, "remainder 3"},
		{"leaf of another address", func(p *Proof) { p.Leaves[0].Leaf.Address = "B" }, "is of address"},
		{"leaf twice", func(p *Proof) { p.Leaves[1] = p.Leaves[0] }, "given twice"},
		{"path too short", func(p *Proof) { p.Leaves[0].Path = p.Leaves[0].Path[:1] }, "siblings"},
		{"leaf count", func(p *Proof) { p.LeafCount = 5 }, "siblings"},
		{"version", func(p *Proof) { p.Version = 2 }, "version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := creditedProof(t)
			tc.tamper(p)
			err := p.Verify()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want one naming %q", err, tc.want)
			}
		})
	}
}

func TestCommitment(t *testing.T) {
	tr, _ := Build(randomLeaves(rand.New(rand.NewPCG(1, 1)), 9))
	w := []Committed{{Block: Hash{1}, Root: tr.Root().Hash, Total: tr.Root().Sum}, {Block: Hash{2}, Root: Hash{3}, Total: big.NewInt(5)}}
	s, err := CommitScript(w)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 40 || s[0] != 0x6a || s[1] != 38 || string(s[2:6]) != "LODE" || s[6] != 1 || s[7] != 2 {
		t.Fatalf("script %x", s)
	}
	c, ok := ParseCommitScript(s)
	if !ok || c.Count != 2 {
		t.Fatalf("parse: %v %v", c, ok)
	}
	if err := c.Check(w); err != nil {
		t.Fatal(err)
	}
	w[1].Total = big.NewInt(6)
	if err := c.Check(w); !errors.Is(err, ErrMismatch) {
		t.Fatalf("tampered total: %v", err)
	}
	if err := c.Check(w[:1]); !errors.Is(err, ErrMismatch) {
		t.Fatalf("a window left out: %v", err)
	}
	for _, bad := range [][]byte{nil, s[:39], append([]byte{0x6a, 38, 'L', 'O', 'D', 'X'}, s[6:]...)} {
		if _, ok := ParseCommitScript(bad); ok {
			t.Fatalf("parsed %x", bad)
		}
	}
}

func TestLeavesMergeRuns(t *testing.T) {
	got, err := Leaves([]Entry{{"i:1", "i:2", "A", "5"}, {"j:1", "j:7", "A", "6"}, {"i:3", "i:3", "B", "1"}, {"i:4", "i:9", "A", "2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Leaf{{"A", "11", "i:1", "j:7"}, {"B", "1", "i:3", "i:3"}, {"A", "2", "i:4", "i:9"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if _, err := Leaves([]Entry{{"i:1", "i:1", "A", "x"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad units: %v", err)
	}
}

// FuzzVerifyProof: a malformed proof is refused with an error, never a panic;
// and a valid proof seeds the corpus so mutations stay near the real shape.
func FuzzVerifyProof(f *testing.F) {
	p := &Proof{}
	{
		leaves := []Leaf{{"A", "600", "i:1", "i:1"}, {"B", "300", "i:2", "i:2"}, {"A", "99", "i:3", "i:4"}}
		tr, _ := Build(leaves)
		p, _ = NewProof(tr, "ff", "A")
		p.Credited, p.Reward, p.Fee, p.Credit, p.Contributors = true, 1000, 0, 699, 2
	}
	b, _ := json.Marshal(p)
	f.Add(b)
	f.Add([]byte(`{"version":1,"address":"A","total":"1","leaf_count":18446744073709551615,"units":"0","leaves":[{"index":18446744073709551614,"leaf":{"address":"A","units":"1"},"path":[]}]}`))
	f.Add([]byte(`{"version":1,"address":"A","total":"0","leaf_count":1,"units":"0","credited":true,"reward":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProof(data)
		if err != nil {
			return
		}
		_ = p.Verify()
	})
}

func FuzzParseCommitScript(f *testing.F) {
	s, _ := CommitScript([]Committed{{Total: big.NewInt(1)}})
	f.Add(s)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, ok := ParseCommitScript(data)
		if ok && (c.Count == 0 || len(data) != 40) {
			t.Fatalf("accepted %x", data)
		}
	})
}

// TestRootBuilderMatchesBuild: the streaming root equals Build's for every
// leaf count from 0 to 130 (odd promotions at every level).
func TestRootBuilderMatchesBuild(t *testing.T) {
	var leaves []Leaf
	for n := 0; n <= 130; n++ {
		tree, err := Build(leaves)
		if err != nil {
			t.Fatal(err)
		}
		var rb RootBuilder
		for _, l := range leaves {
			if err := rb.Add(l); err != nil {
				t.Fatal(err)
			}
		}
		got, err := rb.Root()
		if err != nil {
			t.Fatal(err)
		}
		want := tree.Root()
		if got.Hash != want.Hash || got.Sum.Cmp(want.Sum) != 0 || rb.Len() != uint64(n) {
			t.Fatalf("%d leaves: root %s/%s, want %s/%s", n, got.Hash, got.Sum, want.Hash, want.Sum)
		}
		leaves = append(leaves, Leaf{Address: fmt.Sprintf("a%d", n%7), Units: fmt.Sprint(1 + n*n), FirstSeq: fmt.Sprintf("i:%d", n), LastSeq: fmt.Sprintf("i:%d", n+1)})
	}
	var rb RootBuilder
	if err := rb.Add(Leaf{Address: "a", Units: "x"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad leaf: %v", err)
	}
}

// TestProofBuilderMatchesNewProof: the streamed proof of each address equals
// NewProof's over the whole tree, for every leaf count from 1 to 70, and
// verifies.
func TestProofBuilderMatchesNewProof(t *testing.T) {
	var leaves []Leaf
	for n := 1; n <= 70; n++ {
		leaves = append(leaves, Leaf{Address: fmt.Sprintf("a%d", (n*n)%5), Units: fmt.Sprint(1 + 3*n), FirstSeq: fmt.Sprintf("i:%d", n), LastSeq: fmt.Sprintf("i:%d", n)})
		tree, err := Build(leaves)
		if err != nil {
			t.Fatal(err)
		}
		for a := range 6 { // a5 has no leaf
			addr := fmt.Sprintf("a%d", a)
			want, err := NewProof(tree, "blk", addr)
			if err != nil {
				t.Fatal(err)
			}
			pb := NewProofBuilder("blk", addr)
			for _, l := range leaves {
				if err := pb.Add(l); err != nil {
					t.Fatal(err)
				}
			}
			got, err := pb.Proof()
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Leaves) == 0 {
				want.Leaves = nil
			}
			for i := range want.Leaves {
				if want.Leaves[i].Path == nil {
					want.Leaves[i].Path = []Branch{}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%d leaves, %s:\n got %+v\nwant %+v", n, addr, got, want)
			}
			if len(got.Leaves) > 0 {
				if err := got.Verify(); err != nil {
					t.Fatalf("%d leaves, %s: %v", n, addr, err)
				}
			}
		}
	}
}
