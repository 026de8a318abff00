package blocktemplate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// TestShareVectors rebuilds real mainnet/testnet headers from their notify
// and submit lines through JobFromNotify and Job.Header.
func TestShareVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.Shares {
		t.Run(tc.Name, func(t *testing.T) {
			n := Notify{
				JobID: tc.Notify.JobID, PrevHash: tc.Notify.PrevHash, Coinb1: tc.Notify.Coinb1, Coinb2: tc.Notify.Coinb2,
				MerkleBranch: tc.Notify.MerkleBranch, Version: tc.Notify.Version, NBits: tc.Notify.NBits,
				NTime: tc.Notify.NTime, CleanJobs: tc.Notify.CleanJobs,
			}
			en1 := mustHex(t, tc.Extranonce1)
			job, err := JobFromNotify(n, len(en1), tc.Extranonce2Len)
			if err != nil {
				t.Fatalf("JobFromNotify: %v", err)
			}
			// Notify round-trips to the same strings.
			back := job.Notify()
			if back.PrevHash != n.PrevHash || back.Coinb1 != n.Coinb1 || back.Coinb2 != n.Coinb2 ||
				back.Version != n.Version || back.NBits != n.NBits || back.NTime != n.NTime ||
				strings.Join(back.MerkleBranch, ",") != strings.Join(n.MerkleBranch, ",") || back.CleanJobs != n.CleanJobs {
				t.Errorf("notify round trip:\n got %+v\nwant %+v", back, n)
			}
			en2 := mustHex(t, tc.Submit.Extranonce2)
			cb, err := job.Coinbase(en1, en2)
			if err != nil || hexs(cb) != tc.Expected.CoinbaseHex {
				t.Fatalf("coinbase %x (%v)", cb, err)
			}
			version := job.Version
			if tc.Submit.VersionBits != "" {
				bits, err := ParseHex32(tc.Submit.VersionBits)
				if err != nil {
					t.Fatal(err)
				}
				const mask = DefaultVersionMask
				version = job.Version&^mask | bits&mask
			}
			if want, _ := ParseHex32(tc.Expected.Version); version != want {
				t.Fatalf("version %08x, want %s", version, tc.Expected.Version)
			}
			ntime, _ := ParseHex32(tc.Submit.NTime)
			nonce, _ := ParseHex32(tc.Submit.Nonce)
			hdr, err := job.Header(en1, en2, version, ntime, nonce)
			if err != nil {
				t.Fatal(err)
			}
			if hexs(hdr[:]) != tc.Expected.HeaderHex {
				t.Fatalf("header %x\nwant   %s", hdr, tc.Expected.HeaderHex)
			}
			hash := chainhash.DoubleHashH(hdr[:])
			if hash.String() != tc.Expected.BlockHash {
				t.Errorf("hash %s, want %s", hash, tc.Expected.BlockHash)
			}
			if _, err := job.Block(en1, en2, hdr); err == nil {
				t.Error("Block without a template succeeded")
			}
		})
	}
}

func TestJobFromNotifyErrors(t *testing.T) {
	good := Notify{
		JobID: "bf", PrevHash: "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000",
		Coinb1: "0100", Coinb2: "0000", MerkleBranch: []string{strings.Repeat("ab", 32)},
		Version: "20000000", NBits: "1c2ac4af", NTime: "504e86b9",
	}
	if _, err := JobFromNotify(good, 4, 8); err != nil {
		t.Fatalf("good notify: %v", err)
	}
	tests := []struct {
		name     string
		edit     func(n *Notify)
		en1, en2 int
		want     string
	}{
		{"empty job id", func(n *Notify) { n.JobID = "" }, 4, 8, "job id"},
		{"short prevhash", func(n *Notify) { n.PrevHash = "00" }, 4, 8, "prevhash"},
		{"prevhash not hex", func(n *Notify) { n.PrevHash = strings.Repeat("g", 64) }, 4, 8, "prevhash"},
		{"coinb1 odd", func(n *Notify) { n.Coinb1 = "abc" }, 4, 8, "coinb1"},
		{"coinb1 empty", func(n *Notify) { n.Coinb1 = "" }, 4, 8, "coinb1"},
		{"coinb2 not hex", func(n *Notify) { n.Coinb2 = "zz" }, 4, 8, "coinb2"},
		{"branch short", func(n *Notify) { n.MerkleBranch = []string{"abcd"} }, 4, 8, "merkle branch 0"},
		{"branch not hex", func(n *Notify) { n.MerkleBranch = []string{strings.Repeat("x", 64)} }, 4, 8, "merkle branch 0"},
		{"version short", func(n *Notify) { n.Version = "2000000" }, 4, 8, "version"},
		{"version sign", func(n *Notify) { n.Version = "+2000000" }, 4, 8, "version"},
		{"nbits not hex", func(n *Notify) { n.NBits = "1c2ac4ag" }, 4, 8, "nbits"},
		{"nbits zero target", func(n *Notify) { n.NBits = "00000000" }, 4, 8, "nbits"},
		{"nbits negative", func(n *Notify) { n.NBits = "1d800000" }, 4, 8, "nbits"},
		{"ntime long", func(n *Notify) { n.NTime = "504e86b900" }, 4, 8, "ntime"},
		{"en2 zero", func(n *Notify) {}, 4, 0, "extranonce2"},
		{"en1 huge", func(n *Notify) {}, 100, 8, "extranonce1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := good
			n.MerkleBranch = append([]string(nil), good.MerkleBranch...)
			tc.edit(&n)
			if _, err := JobFromNotify(n, tc.en1, tc.en2); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStratumPrevHash(t *testing.T) {
	// stratum-v1.md §6.2.
	display := "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8"
	h, _ := chainhash.NewHashFromStr(display)
	if got := StratumPrevHash(*h); got != "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000" {
		t.Fatalf("stratum prevhash %s", got)
	}
	back, err := ParseStratumPrevHash(StratumPrevHash(*h))
	if err != nil || back != *h {
		t.Fatalf("round trip %s %v", back, err)
	}
}

// TestBlockAssemblyVectors assembles a real signet block (witness coinbase
// and two witness transactions) and compares the submitblock bytes.
func TestBlockAssemblyVectors(t *testing.T) {
	v := loadVectors(t)
	for _, tc := range v.BlockAssembly {
		t.Run(tc.Name, func(t *testing.T) {
			cb := mustHex(t, tc.CoinbaseStrippedHex)
			tpl := &Template{}
			var wtxids []chainhash.Hash
			for i, s := range tc.OtherTxsHex {
				tx := new(wire.MsgTx)
				if err := tx.Deserialize(bytes.NewReader(mustHex(t, s))); err != nil {
					t.Fatal(err)
				}
				if tx.WitnessHash().String() != tc.WTxIDs[i] {
					t.Fatalf("wtxid %d", i)
				}
				wtxids = append(wtxids, tx.WitnessHash())
				tpl.Transactions = append(tpl.Transactions, Transaction{Data: mustHex(t, s), TxID: tx.TxHash(), WTxID: tx.WitnessHash()})
			}
			if got := hexs(WitnessCommitmentScript(wtxids)); got != tc.ExpectedCommitScript {
				t.Errorf("commitment %s, want %s", got, tc.ExpectedCommitScript)
			}
			// Cut the real coinbase around a 4+8-byte "extranonce" region.
			job := &Job{
				ID: "v", Coinb1: cb[:40], Coinb2: cb[52:], Extranonce1Size: 4, Extranonce2Size: 8,
				Template: tpl, CoinbaseWitness: true,
			}
			var hdr [80]byte
			copy(hdr[:], mustHex(t, tc.HeaderHex))
			block, err := job.Block(cb[40:44], cb[44:52], hdr)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := block.Serialize(&buf); err != nil {
				t.Fatal(err)
			}
			if hexs(buf.Bytes()) != tc.ExpectedBlockHex {
				t.Errorf("block bytes differ:\n got %x\nwant %s", buf.Bytes(), tc.ExpectedBlockHex)
			}
			raw, err := job.BlockBytes(cb[40:44], cb[44:52], hdr)
			if err != nil || hexs(raw) != tc.ExpectedBlockHex {
				t.Errorf("BlockBytes differ (%v):\n got %x\nwant %s", err, raw, tc.ExpectedBlockHex)
			}
			if block.BlockHash().String() != tc.ExpectedBlockHash {
				t.Errorf("block hash %s", block.BlockHash())
			}
			if _, err := job.Block(cb[40:43], cb[44:52], hdr); err == nil {
				t.Error("short extranonce1 accepted")
			}
		})
	}
}

func FuzzJobFromNotify(f *testing.F) {
	f.Add("bf", "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000", "0100", "0000", strings.Repeat("ab", 32), "20000000", "1c2ac4af", "504e86b9", true, 4, 8)
	f.Add("1", strings.Repeat("0", 64), "", "zz", "", "2000000", "00000000", "ffffffff", false, 0, 0)
	f.Fuzz(func(t *testing.T, id, prev, c1, c2, branch, version, nbits, ntime string, clean bool, en1, en2 int) {
		n := Notify{JobID: id, PrevHash: prev, Coinb1: c1, Coinb2: c2, Version: version, NBits: nbits, NTime: ntime, CleanJobs: clean}
		if branch != "" {
			n.MerkleBranch = strings.Split(branch, ",")
		}
		job, err := JobFromNotify(n, en1, en2)
		if err != nil {
			return
		}
		// What was accepted encodes back to the same params (hex lowered)
		// and parses again to the same job.
		back := job.Notify()
		again, err := JobFromNotify(back, en1, en2)
		if err != nil {
			t.Fatalf("re-parse of %+v: %v", back, err)
		}
		if again.PrevHash != job.PrevHash || again.Version != job.Version || again.Bits != job.Bits ||
			again.NTime != job.NTime || !bytes.Equal(again.Coinb1, job.Coinb1) || !bytes.Equal(again.Coinb2, job.Coinb2) ||
			len(again.MerkleBranch) != len(job.MerkleBranch) || !strings.EqualFold(back.PrevHash, prev) {
			t.Fatalf("round trip changed the job: %+v vs %+v", again, job)
		}
	})
}
