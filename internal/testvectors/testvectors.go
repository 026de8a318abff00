// Package testvectors loads testdata/vectors.json, the real mainnet and
// testnet blocks and Stratum share reconstructions every layer of Lode is
// checked against, into typed structs shared by the tests of all packages.
//
// It imports no Lode package, so any package's tests may use it.
package testvectors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// File is testdata/vectors.json. Hashes are in display order and
// merkle-branch entries in internal order, as its "conventions" object says.
type File struct {
	Shares         []Share          `json:"share_vectors"`
	Headers        []Header         `json:"header_vectors"`
	HashDifficulty []HashDifficulty `json:"hash_difficulty_vectors"`
	Difficulty     []Difficulty     `json:"difficulty_vectors"`
	VersionRolling []VersionRolling `json:"version_rolling_vectors"`
	BIP34          []BIP34          `json:"bip34_height_vectors"`
	Merkle         []Merkle         `json:"merkle_branch_vectors"`
	BlockAssembly  []BlockAssembly  `json:"block_assembly_vectors"`
}

// Share is a mining.notify + mining.submit pair and what it must rebuild.
type Share struct {
	Name           string   `json:"name"`
	Extranonce1    string   `json:"extranonce1"`
	Extranonce2Len int      `json:"extranonce2_size"`
	VersionMask    string   `json:"version_rolling_mask"`
	Notify         Notify   `json:"notify"`
	Submit         Submit   `json:"submit"`
	Expected       Expected `json:"expected"`
}

// Notify holds the nine mining.notify params.
type Notify struct {
	JobID        string   `json:"job_id"`
	PrevHash     string   `json:"prevhash"`
	Coinb1       string   `json:"coinb1"`
	Coinb2       string   `json:"coinb2"`
	MerkleBranch []string `json:"merkle_branch"`
	Version      string   `json:"version"`
	NBits        string   `json:"nbits"`
	NTime        string   `json:"ntime"`
	CleanJobs    bool     `json:"clean_jobs"`
}

// Params returns the notify as its JSON params array (an empty branch as []).
func (n Notify) Params() []any {
	branch := n.MerkleBranch
	if branch == nil {
		branch = []string{}
	}
	return []any{n.JobID, n.PrevHash, n.Coinb1, n.Coinb2, branch, n.Version, n.NBits, n.NTime, n.CleanJobs}
}

// Submit holds the mining.submit params.
type Submit struct {
	Worker      string `json:"worker"`
	JobID       string `json:"job_id"`
	Extranonce2 string `json:"extranonce2"`
	NTime       string `json:"ntime"`
	Nonce       string `json:"nonce"`
	VersionBits string `json:"version_bits"`
}

// Params returns the submit params: five, or six with version bits.
func (s Submit) Params() []string {
	p := []string{s.Worker, s.JobID, s.Extranonce2, s.NTime, s.Nonce}
	if s.VersionBits != "" {
		p = append(p, s.VersionBits)
	}
	return p
}

// Expected is what a share vector must reproduce.
type Expected struct {
	CoinbaseHex           string  `json:"coinbase_hex"`
	MerkleRootHeaderOrder string  `json:"merkle_root_header_order"`
	Version               string  `json:"version"`
	HeaderHex             string  `json:"header_hex"`
	BlockHash             string  `json:"block_hash"`
	ShareDifficulty       float64 `json:"share_difficulty"`
	NetworkTarget         string  `json:"network_target"`
	MeetsNetworkTarget    bool    `json:"meets_network_target"`
}

// Header is a raw 80-byte header and its block hash.
type Header struct {
	Name      string `json:"name"`
	HeaderHex string `json:"header_hex"`
	BlockHash string `json:"block_hash"`
}

// HashDifficulty is a hash and the share difficulty it is worth.
type HashDifficulty struct {
	Name            string  `json:"name"`
	Hash            string  `json:"hash"`
	ShareDifficulty float64 `json:"share_difficulty"`
}

// Difficulty is compact bits, the target they expand to and its difficulty.
type Difficulty struct {
	Name       string  `json:"name"`
	Bits       string  `json:"bits"`
	Target     string  `json:"target"`
	Difficulty float64 `json:"difficulty"`
}

// VersionRolling is a BIP310 negotiation and the header version it yields.
type VersionRolling struct {
	Name           string `json:"name"`
	ServerMask     string `json:"server_mask"`
	MinerMask      string `json:"miner_mask"`
	NegotiatedMask string `json:"negotiated_mask"`
	JobVersion     string `json:"job_version"`
	VersionBits    string `json:"version_bits"`
	Valid          *bool  `json:"valid"`
	HeaderVersion  string `json:"header_version"`
}

// BIP34 is a block height and its coinbase scriptSig push.
type BIP34 struct {
	Height    int64  `json:"height"`
	ScriptHex string `json:"script_hex"`
}

// Merkle is a block's txids and the Stratum merkle branch they give.
type Merkle struct {
	Name           string   `json:"name"`
	CoinbaseTxID   string   `json:"coinbase_txid"`
	TxIDs          []string `json:"txids"`
	ExpectedBranch []string `json:"expected_merkle_branch"`
	ExpectedRoot   string   `json:"expected_merkle_root"`
}

// BlockAssembly is a header, coinbase and transactions and the exact
// submitblock bytes they make.
type BlockAssembly struct {
	Name                 string   `json:"name"`
	HeaderHex            string   `json:"header_hex"`
	CoinbaseStrippedHex  string   `json:"coinbase_stripped_hex"`
	OtherTxsHex          []string `json:"other_txs_hex"`
	ExpectedBlockHex     string   `json:"expected_block_hex"`
	ExpectedBlockHash    string   `json:"expected_block_hash"`
	ExpectedCommitScript string   `json:"expected_witness_commitment_script"`
	WTxIDs               []string `json:"wtxids"`
}

// Path is the location of vectors.json in the repository.
func Path() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "vectors.json")
}

// Load reads and decodes vectors.json, failing the test if it cannot or if
// any vector family is empty (a test over an empty list would pass vacuously).
func Load(t testing.TB) *File {
	t.Helper()
	raw, err := os.ReadFile(Path())
	if err != nil {
		t.Fatalf("testvectors: %v", err)
	}
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatalf("testvectors: decode %s: %v", Path(), err)
	}
	if len(f.Shares) == 0 || len(f.Headers) == 0 || len(f.HashDifficulty) == 0 || len(f.Difficulty) == 0 ||
		len(f.VersionRolling) == 0 || len(f.BIP34) == 0 || len(f.Merkle) == 0 || len(f.BlockAssembly) == 0 {
		t.Fatalf("testvectors: %s lacks a vector family", Path())
	}
	return &f
}
