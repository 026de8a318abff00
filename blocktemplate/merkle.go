package blocktemplate

import (
	"crypto/sha256"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
)

// hashPair returns sha256d(left ‖ right), one inner node of a merkle tree.
func hashPair(left, right *chainhash.Hash) chainhash.Hash {
	var buf [2 * chainhash.HashSize]byte
	copy(buf[:chainhash.HashSize], left[:])
	copy(buf[chainhash.HashSize:], right[:])
	first := sha256.Sum256(buf[:])
	return chainhash.Hash(sha256.Sum256(first[:]))
}

// MerkleBranch returns the Stratum merkle branch for a block whose leaves are
// the coinbase followed by txids (internal order, template order): the
// sibling hashes on the path from the coinbase leaf to the root. It does not
// depend on the coinbase, so it is computed once per template. The branch of
// a coinbase-only block is empty.
func MerkleBranch(txids []chainhash.Hash) []chainhash.Hash {
	if len(txids) == 0 {
		return nil
	}
	// level[0] stands for the coinbase-side node whose value we never need.
	level := make([]chainhash.Hash, len(txids)+1)
	copy(level[1:], txids)
	var branch []chainhash.Hash
	for len(level) > 1 {
		branch = append(branch, level[1])
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := make([]chainhash.Hash, len(level)/2)
		for i := 2; i < len(level); i += 2 {
			next[i/2] = hashPair(&level[i], &level[i+1])
		}
		level = next
	}
	return branch
}

// FoldBranch computes the merkle root from the coinbase txid and a branch:
// the running hash is always on the left (Stratum §6.1).
func FoldBranch(coinbaseTxID chainhash.Hash, branch []chainhash.Hash) chainhash.Hash {
	root := coinbaseTxID
	for i := range branch {
		root = hashPair(&root, &branch[i])
	}
	return root
}

// MerkleRoot computes the merkle root of leaves (internal order), duplicating
// the last node of odd levels as Bitcoin does. It returns the zero hash for
// no leaves.
func MerkleRoot(leaves []chainhash.Hash) chainhash.Hash {
	if len(leaves) == 0 {
		return chainhash.Hash{}
	}
	level := append([]chainhash.Hash(nil), leaves...)
	for len(level) > 1 {
		if len(level)%2 == 1 {
			level = append(level, level[len(level)-1])
		}
		next := level[:0:0]
		for i := 0; i < len(level); i += 2 {
			next = append(next, hashPair(&level[i], &level[i+1]))
		}
		level = next
	}
	return level[0]
}

// WitnessCommitmentScript returns the coinbase output script committing to
// the wtxids of the non-coinbase transactions (internal order), with the
// coinbase wtxid and the witness reserved value both taken as 32 zero bytes
// (BIP141): 6a24aa21a9ed ‖ sha256d(witness_root ‖ reserved).
func WitnessCommitmentScript(wtxids []chainhash.Hash) []byte {
	leaves := make([]chainhash.Hash, len(wtxids)+1)
	copy(leaves[1:], wtxids)
	root := MerkleRoot(leaves)
	var reserved chainhash.Hash
	commitment := hashPair(&root, &reserved)
	script := make([]byte, 0, len(witnessCommitmentPrefix)+chainhash.HashSize)
	script = append(script, witnessCommitmentPrefix...)
	return append(script, commitment[:]...)
}

// witnessCommitmentPrefix is OP_RETURN, a 36-byte push, and the BIP141 tag.
var witnessCommitmentPrefix = []byte{0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed}
