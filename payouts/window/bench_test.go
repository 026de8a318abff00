package window

import (
	"fmt"
	"runtime"
	"testing"
)

// liveBytes is the heap in use after a collection.
func liveBytes() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkProofMainnet: one address's proof over a mainnet-sized window
// (524,000 leaves, 10,000 addresses of 42 bytes, each in ~52 leaves), by the
// whole tree (Build + NewProof) and streamed (ProofBuilder), as the API
// serves GET …/proof. live-MB is what the proof's structure holds at its
// largest (the leaves themselves, which the tree needs in a slice and the
// builder does not, are not counted).
func BenchmarkProofMainnet(b *testing.B) {
	const n, addrs = 524_000, 10_000
	leaves := make([]Leaf, n)
	for i := range leaves {
		leaves[i] = Leaf{Address: fmt.Sprintf("bc1q%038d", (i*7919)%addrs), Units: fmt.Sprint(46875000000000000 + i),
			FirstSeq: fmt.Sprintf("0a1b2c3d:%d", 1_764_995_000_000_000_000+2*i), LastSeq: fmt.Sprintf("0a1b2c3d:%d", 1_764_995_000_000_000_001+2*i)}
	}
	addr := leaves[12345].Address
	b.Run("tree", func(b *testing.B) {
		b.ReportAllocs()
		var live uint64
		for b.Loop() {
			base := liveBytes()
			t, err := Build(leaves)
			if err != nil {
				b.Fatal(err)
			}
			if p, err := NewProof(t, "blk", addr); err != nil || len(p.Leaves) == 0 {
				b.Fatal(err)
			}
			live = liveBytes() - base
			runtime.KeepAlive(t)
		}
		b.ReportMetric(float64(live)/1e6, "live-MB")
	})
	b.Run("streamed", func(b *testing.B) {
		b.ReportAllocs()
		var live uint64
		for b.Loop() {
			base := liveBytes()
			pb := NewProofBuilder("blk", addr)
			for _, l := range leaves {
				if err := pb.Add(l); err != nil {
					b.Fatal(err)
				}
			}
			p, err := pb.Proof()
			if err != nil || len(p.Leaves) == 0 {
				b.Fatal(err)
			}
			if after := liveBytes(); after > base {
				live = after - base
			}
			runtime.KeepAlive(pb)
		}
		b.ReportMetric(float64(live)/1e6, "live-MB")
	})
}
