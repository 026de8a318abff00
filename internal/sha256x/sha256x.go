package sha256x

import "encoding/binary"

// BlockSize is the SHA-256 block size in bytes.
const BlockSize = 64

// State is a SHA-256 chaining value (or a final digest) as eight big-endian words.
type State [8]uint32

// IV is the SHA-256 initial chaining value.
var IV = State{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// PutBytes writes the digest bytes of s (big-endian words) to dst.
func (s *State) PutBytes(dst *[32]byte) {
	for i, w := range s {
		binary.BigEndian.PutUint32(dst[4*i:], w)
	}
}

// Bytes returns the digest bytes of s.
func (s *State) Bytes() [32]byte {
	var b [32]byte
	s.PutBytes(&b)
	return b
}

// FromBytes returns the state whose digest bytes are b.
func FromBytes(b *[32]byte) State {
	var s State
	for i := range s {
		s[i] = binary.BigEndian.Uint32(b[4*i:])
	}
	return s
}

// Blocks runs the compression function over every whole 64-byte block of p,
// updating s in place. Trailing bytes (len(p) % 64) are ignored.
func Blocks(s *State, p []byte) {
	p = p[:len(p)&^(BlockSize-1)]
	if len(p) == 0 {
		return
	}
	if useSHANI {
		blocksSHANI(s, p)
		return
	}
	blocksGeneric(s, p)
}

// Double sets out to SHA-256(SHA-256(m)) where m's hashing started from mid
// and padded holds the rest of m already padded (whole blocks, at least one).
// out may alias mid. It reports false, leaving out unchanged, when padded has
// no whole block.
func Double(out, mid *State, padded []byte) bool {
	padded = padded[:len(padded)&^(BlockSize-1)]
	if len(padded) == 0 {
		return false
	}
	if useSHANI {
		doubleSHANI(out, mid, padded)
		return true
	}
	doubleGeneric(out, mid, padded)
	return true
}

// MerkleFold replaces root by sha256d(root ‖ h) for each 32-byte hash h in
// branch, in order (the running value on the left, as in a Stratum merkle
// branch). Hashes are raw digest bytes. Trailing bytes (len % 32) are ignored.
func MerkleFold(root *State, branch []byte) {
	branch = branch[:len(branch)&^31]
	if len(branch) == 0 {
		return
	}
	if useSHANI {
		merkleFoldSHANI(root, branch)
		return
	}
	merkleFoldGeneric(root, branch)
}

// PaddedLen is the length of a message of n bytes once SHA-256 padding is added.
func PaddedLen(n int) int {
	return (n + 8 + 1 + BlockSize - 1) &^ (BlockSize - 1)
}

// Pad writes SHA-256 padding into buf after its first n message bytes, for a
// message whose total length (counting bytes hashed before buf) is total, and
// returns buf[:PaddedLen(n)]. It reports false when buf is too short.
func Pad(buf []byte, n int, total uint64) ([]byte, bool) {
	end := PaddedLen(n)
	if n < 0 || end > len(buf) {
		return nil, false
	}
	buf[n] = 0x80
	clear(buf[n+1 : end-8])
	binary.BigEndian.PutUint64(buf[end-8:end], total*8)
	return buf[:end], true
}

// Sum256d returns SHA-256(SHA-256(data)) without allocating for data up to
// 1 KiB (longer inputs are hashed in pieces).
func Sum256d(data []byte) [32]byte {
	s := IV
	full := len(data) &^ (BlockSize - 1)
	Blocks(&s, data[:full])
	var buf [2 * BlockSize]byte
	n := copy(buf[:], data[full:])
	padded, _ := Pad(buf[:], n, uint64(len(data)))
	Double(&s, &s, padded)
	return s.Bytes()
}

// Share computes a Stratum share's header hash in one pass. The coinbase is
// hashed from mid over head and then rest (together, the coinbase after the
// midstate, SHA-256 padded; head must hold at least one whole block, rest
// may be empty), hashed again to the coinbase txid, folded with the merkle
// branch (32-byte hashes), and the resulting root is written into hdr at
// bytes 36..68. hdr is the 80-byte header followed by its SHA-256 padding
// (two blocks); its other fields must be set. out receives sha256d(header).
// It reports false, doing nothing, when head has no whole block.
func Share(out, mid *State, head, rest, branch []byte, hdr *[128]byte) bool {
	head = head[:len(head)&^(BlockSize-1)]
	rest = rest[:len(rest)&^(BlockSize-1)]
	branch = branch[:len(branch)&^31]
	if len(head) == 0 {
		return false
	}
	if useSHANI {
		shareSHANI(out, mid, head, rest, branch, hdr)
		return true
	}
	shareGeneric(out, mid, head, rest, branch, hdr)
	return true
}

func shareGeneric(out, mid *State, head, rest, branch []byte, hdr *[128]byte) {
	s := *mid
	blocksGeneric(&s, head)
	doubleOrSecond(&s, rest)
	merkleFoldGeneric(&s, branch)
	for i, w := range s {
		binary.BigEndian.PutUint32(hdr[36+4*i:], w)
	}
	doubleGeneric(out, &IV, hdr[:])
}

// doubleOrSecond finishes the first hash over rest (possibly empty) and
// hashes the digest again.
func doubleOrSecond(s *State, rest []byte) {
	blocksGeneric(s, rest)
	*s = secondGeneric(s)
}
