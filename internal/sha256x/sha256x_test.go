package sha256x

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"
)

func refSum256d(b []byte) [32]byte {
	h := sha256.Sum256(b)
	return sha256.Sum256(h[:])
}

// impls lists every implementation available on this machine, so the
// portable code is tested even where SHA-NI is used by default.
type impl struct {
	name   string
	blocks func(*State, []byte)
	double func(out, mid *State, p []byte)
	fold   func(*State, []byte)
}

func impls() []impl {
	list := []impl{{"generic", blocksGeneric, doubleGeneric, merkleFoldGeneric}}
	if useSHANI {
		list = append(list, impl{"shani", blocksSHANI, doubleSHANI, merkleFoldSHANI})
	}
	return list
}

// sumWith hashes data as SHA-256 with padding, through blocks.
func sumWith(im impl, data []byte) [32]byte {
	padded := make([]byte, PaddedLen(len(data)))
	copy(padded, data)
	p, ok := Pad(padded, len(data), uint64(len(data)))
	if !ok {
		panic("pad")
	}
	s := IV
	im.blocks(&s, p)
	return s.Bytes()
}

func TestBlocksAgainstStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			for n := 0; n < 1100; n++ {
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				if got, want := sumWith(im, data), sha256.Sum256(data); got != want {
					t.Fatalf("len %d: got %x want %x", n, got, want)
				}
			}
		})
	}
}

func TestDoubleFromMidstate(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			for n := 0; n < 600; n += 1 + rng.IntN(7) {
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(rng.Uint32())
				}
				full := n &^ 63
				mid := IV
				im.blocks(&mid, data[:full])
				buf := make([]byte, 128)
				k := copy(buf, data[full:])
				p, _ := Pad(buf, k, uint64(n))
				var out State
				im.double(&out, &mid, p)
				if got, want := out.Bytes(), refSum256d(data); got != want {
					t.Fatalf("len %d: got %x want %x", n, got, want)
				}
				// out aliasing mid must work.
				im.double(&mid, &mid, p)
				if mid != out {
					t.Fatalf("len %d: aliased result differs", n)
				}
			}
		})
	}
}

func TestMerkleFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, im := range impls() {
		t.Run(im.name, func(t *testing.T) {
			for n := 0; n <= 14; n++ {
				var root [32]byte
				for i := range root {
					root[i] = byte(rng.Uint32())
				}
				branch := make([]byte, 32*n)
				for i := range branch {
					branch[i] = byte(rng.Uint32())
				}
				want := root
				for i := 0; i < n; i++ {
					want = refSum256d(append(want[:], branch[32*i:32*i+32]...))
				}
				s := FromBytes(&root)
				im.fold(&s, branch)
				if got := s.Bytes(); got != want {
					t.Fatalf("branch %d: got %x want %x", n, got, want)
				}
			}
		})
	}
}

func TestSum256d(t *testing.T) {
	for _, n := range []int{0, 1, 55, 56, 63, 64, 80, 119, 120, 128, 252, 1000, 5000} {
		data := bytes.Repeat([]byte{byte(n)}, n)
		if got, want := Sum256d(data), refSum256d(data); got != want {
			t.Fatalf("len %d: got %x want %x", n, got, want)
		}
	}
}

func TestShortInputs(t *testing.T) {
	s := IV
	Blocks(&s, make([]byte, 63))
	if s != IV {
		t.Fatal("partial block changed the state")
	}
	if Double(&s, &s, make([]byte, 10)) {
		t.Fatal("Double accepted a partial block")
	}
	MerkleFold(&s, make([]byte, 31))
	if s != IV {
		t.Fatal("partial hash changed the root")
	}
	if _, ok := Pad(make([]byte, 64), 56, 56); ok {
		t.Fatal("Pad accepted a short buffer")
	}
}

func FuzzDouble(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 80))
	f.Add(bytes.Repeat([]byte{0xff}, 252))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := refSum256d(data)
		if got := Sum256d(data); got != want {
			t.Fatalf("Sum256d(%x) = %x want %x", data, got, want)
		}
		for _, im := range impls() {
			if got := sumWith(im, data); got != sha256.Sum256(data) {
				t.Fatalf("%s: single hash mismatch", im.name)
			}
		}
	})
}

func BenchmarkBlocks(b *testing.B) {
	buf := make([]byte, 44*64)
	s := IV
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Blocks(&s, buf)
	}
}

func BenchmarkStdlibSum256(b *testing.B) {
	buf := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		h := sha256.Sum256(buf)
		buf[0] = h[0]
	}
}

// TestShare checks the fused share hash against crypto/sha256 for random
// coinbase splits, branch lengths and headers, on every implementation.
func TestShare(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	type shareFn func(out, mid *State, head, rest, branch []byte, hdr *[128]byte)
	fns := map[string]shareFn{"generic": shareGeneric}
	if useSHANI {
		fns["shani"] = shareSHANI
	}
	for name, fn := range fns {
		t.Run(name, func(t *testing.T) {
			for iter := 0; iter < 300; iter++ {
				cb := make([]byte, 1+rng.IntN(400))
				for i := range cb {
					cb[i] = byte(rng.Uint32())
				}
				branch := make([]byte, 32*rng.IntN(14))
				for i := range branch {
					branch[i] = byte(rng.Uint32())
				}
				var hdr [128]byte
				for i := 0; i < 80; i++ {
					hdr[i] = byte(rng.Uint32())
				}
				if _, ok := Pad(hdr[:], 80, 80); !ok {
					t.Fatal("pad header")
				}
				// Reference.
				root := refSum256d(cb)
				for i := 0; i < len(branch); i += 32 {
					root = refSum256d(append(root[:], branch[i:i+32]...))
				}
				want := hdr
				copy(want[36:68], root[:])
				wantHash := refSum256d(want[:80])

				// Midstate over a random number of whole leading blocks,
				// head of one or two blocks, rest the remainder.
				full := (len(cb) / 64) * 64
				midBlocks := rng.IntN(full/64 + 1)
				mid := IV
				Blocks(&mid, cb[:64*midBlocks])
				tail := cb[64*midBlocks:]
				padded := make([]byte, PaddedLen(len(tail)))
				copy(padded, tail)
				if _, ok := Pad(padded, len(tail), uint64(len(cb))); !ok {
					t.Fatal("pad")
				}
				headLen := 64 * (1 + rng.IntN(len(padded)/64))
				var out State
				got := hdr
				fn(&out, &mid, padded[:headLen], padded[headLen:], branch, &got)
				if got != want {
					t.Fatalf("iter %d: header root %x want %x", iter, got[36:68], want[36:68])
				}
				if out.Bytes() != wantHash {
					t.Fatalf("iter %d: hash %x want %x", iter, out.Bytes(), wantHash)
				}
			}
		})
	}
	var out State
	var hdr [128]byte
	if Share(&out, &IV, make([]byte, 63), nil, nil, &hdr) {
		t.Fatal("Share accepted a head without a whole block")
	}
}

// BenchmarkShare is the fused share hash for a coinbase of 1+3 blocks after
// the midstate and the given branch length; BenchmarkBlocksRun hashes the
// same number of blocks (5 + 3·branch + 3) contiguously.
func BenchmarkShare(b *testing.B) {
	for _, n := range []int{0, 12} {
		b.Run(fmt.Sprintf("branch=%d", n), func(b *testing.B) {
			head := make([]byte, 64)
			rest := make([]byte, 192)
			branch := make([]byte, 32*n)
			var hdr [128]byte
			var out State
			b.ReportAllocs()
			for b.Loop() {
				Share(&out, &IV, head, rest, branch, &hdr)
			}
		})
	}
}

func BenchmarkBlocksRun(b *testing.B) {
	for _, n := range []int{0, 12} {
		b.Run(fmt.Sprintf("branch=%d", n), func(b *testing.B) {
			buf := make([]byte, 64*(8+3*n))
			s := IV
			b.ReportAllocs()
			for b.Loop() {
				Blocks(&s, buf)
			}
		})
	}
}
