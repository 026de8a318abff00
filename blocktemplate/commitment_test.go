package blocktemplate

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/btcsuite/btcd/wire"
)

type fixedCommitment struct {
	script []byte
	err    error
}

func (f fixedCommitment) CommitmentScript(context.Context) ([]byte, error) { return f.script, f.err }

// TestJobWithCommitment: the commitment is a 0-value output right after the
// payout and before the witness commitment; the coinbase value is unchanged.
func TestJobWithCommitment(t *testing.T) {
	tpl, err := ParseTemplate(readFixture(t, "regtest-506-p2poolv2.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tpl.WitnessCommitment == nil {
		t.Fatal("fixture without witness commitment")
	}
	b, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr})
	if err != nil {
		t.Fatal(err)
	}
	commit := append([]byte{0x6a, 0x26, 'L', 'O', 'D', 'E', 1, 1}, bytes.Repeat([]byte{7}, 32)...)
	job, err := b.JobWithCommitment(tpl, true, commit)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := job.Coinbase(make([]byte, job.Extranonce1Size), make([]byte, job.Extranonce2Size))
	if err != nil {
		t.Fatal(err)
	}
	var tx wire.MsgTx
	if err := tx.DeserializeNoWitness(bytes.NewReader(cb)); err != nil {
		t.Fatal(err)
	}
	if len(tx.TxOut) != 3 || tx.TxOut[0].Value != tpl.CoinbaseValue || tx.TxOut[1].Value != 0 ||
		!bytes.Equal(tx.TxOut[1].PkScript, commit) || !bytes.Equal(tx.TxOut[2].PkScript, tpl.WitnessCommitment) {
		t.Fatalf("outputs %+v", tx.TxOut)
	}
	for _, bad := range [][]byte{{0x51}, append([]byte{0x6a}, make([]byte, MaxCommitmentScript)...)} {
		if _, err := b.JobWithCommitment(tpl, true, bad); err == nil {
			t.Fatalf("accepted commitment %x", bad)
		}
	}
}

// TestManagerCommitment: the manager asks its source for each job; a
// failing or malformed source builds the job without a commitment.
func TestManagerCommitment(t *testing.T) {
	tpl, err := ParseTemplate(readFixture(t, "regtest-506-p2poolv2.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBuilder(Config{Network: regtestParams(), PayoutAddress: regtestAddr})
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := b.Job(tpl, true)
	commit := append([]byte{0x6a, 0x26, 'L', 'O', 'D', 'E', 1, 1}, bytes.Repeat([]byte{7}, 32)...)
	for _, tc := range []struct {
		src  fixedCommitment
		want bool
	}{
		{fixedCommitment{script: commit}, true},
		{fixedCommitment{err: errors.New("redis down")}, false},
		{fixedCommitment{script: []byte{0x51}}, false},
		{fixedCommitment{}, false},
	} {
		m, err := NewManager(ManagerConfig{Source: idleSource{}, Builder: b, Commitments: tc.src})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.publish(tpl, triggerTip, plain.CreatedAt); err != nil {
			t.Fatal(err)
		}
		has := bytes.Contains(m.Current().Coinb2, commit)
		if has != tc.want || (!has && !bytes.Equal(m.Current().Coinb2, plain.Coinb2)) {
			t.Fatalf("source %+v: commitment in coinb2 %v, want %v", tc.src, has, tc.want)
		}
	}
}
