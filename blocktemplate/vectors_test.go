package blocktemplate

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vectors is the subset of testdata/vectors.json these tests read.
type vectors struct {
	BIP34 []struct {
		Height    int64  `json:"height"`
		ScriptHex string `json:"script_hex"`
	} `json:"bip34_height_vectors"`
	Merkle []struct {
		Name           string   `json:"name"`
		CoinbaseTxID   string   `json:"coinbase_txid"`
		TxIDs          []string `json:"txids"`
		ExpectedBranch []string `json:"expected_merkle_branch"`
		ExpectedRoot   string   `json:"expected_merkle_root"`
	} `json:"merkle_branch_vectors"`
	Difficulty []struct {
		Name       string  `json:"name"`
		Bits       string  `json:"bits"`
		Target     string  `json:"target"`
		Difficulty float64 `json:"difficulty"`
	} `json:"difficulty_vectors"`
	HashDifficulty []struct {
		Name            string  `json:"name"`
		Hash            string  `json:"hash"`
		ShareDifficulty float64 `json:"share_difficulty"`
	} `json:"hash_difficulty_vectors"`
	Shares []struct {
		Name           string `json:"name"`
		Extranonce1    string `json:"extranonce1"`
		Extranonce2Len int    `json:"extranonce2_size"`
		Notify         struct {
			JobID        string   `json:"job_id"`
			PrevHash     string   `json:"prevhash"`
			Coinb1       string   `json:"coinb1"`
			Coinb2       string   `json:"coinb2"`
			MerkleBranch []string `json:"merkle_branch"`
			Version      string   `json:"version"`
			NBits        string   `json:"nbits"`
			NTime        string   `json:"ntime"`
			CleanJobs    bool     `json:"clean_jobs"`
		} `json:"notify"`
		Submit struct {
			Extranonce2 string `json:"extranonce2"`
			NTime       string `json:"ntime"`
			Nonce       string `json:"nonce"`
			VersionBits string `json:"version_bits"`
		} `json:"submit"`
		Expected struct {
			CoinbaseHex     string  `json:"coinbase_hex"`
			Version         string  `json:"version"`
			HeaderHex       string  `json:"header_hex"`
			BlockHash       string  `json:"block_hash"`
			ShareDifficulty float64 `json:"share_difficulty"`
		} `json:"expected"`
	} `json:"share_vectors"`
	BlockAssembly []struct {
		Name                 string   `json:"name"`
		HeaderHex            string   `json:"header_hex"`
		CoinbaseStrippedHex  string   `json:"coinbase_stripped_hex"`
		OtherTxsHex          []string `json:"other_txs_hex"`
		ExpectedBlockHex     string   `json:"expected_block_hex"`
		ExpectedBlockHash    string   `json:"expected_block_hash"`
		ExpectedCommitScript string   `json:"expected_witness_commitment_script"`
		WTxIDs               []string `json:"wtxids"`
	} `json:"block_assembly_vectors"`
}

func loadVectors(t testing.TB) *vectors {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "vectors.json"))
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(v.BIP34) == 0 || len(v.Merkle) == 0 || len(v.Shares) == 0 || len(v.BlockAssembly) == 0 {
		t.Fatal("vectors.json: a vector family is empty")
	}
	return &v
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}
