package blocktemplate

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/wire"
)

// ErrNoTemplate is returned by Block for a job rebuilt from a notify, which
// lacks the transactions a block needs.
var ErrNoTemplate = errors.New("job has no template")

// Block assembles the full block for a solved header: the header, the
// coinbase (coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, given the 32-byte
// zero witness reserved value when the job commits to witnesses) and the
// template's transactions in template order. The header is used as given;
// Block does not check its proof of work or merkle root. The returned block
// shares the template's decoded transactions: serialize it, do not modify
// it.
func (j *Job) Block(extranonce1, extranonce2 []byte, header [80]byte) (*wire.MsgBlock, error) {
	if j.Template == nil {
		return nil, fmt.Errorf("assemble block for job %s: %w", j.ID, ErrNoTemplate)
	}
	cbBytes, err := j.Coinbase(extranonce1, extranonce2)
	if err != nil {
		return nil, fmt.Errorf("assemble block for job %s: %w", j.ID, err)
	}
	var block wire.MsgBlock
	if err := block.Header.Deserialize(bytes.NewReader(header[:])); err != nil {
		return nil, fmt.Errorf("assemble block for job %s: header: %w", j.ID, err)
	}
	coinbase := new(wire.MsgTx)
	rd := bytes.NewReader(cbBytes)
	if err := coinbase.DeserializeNoWitness(rd); err != nil {
		return nil, fmt.Errorf("assemble block for job %s: coinbase: %w", j.ID, err)
	}
	if rd.Len() != 0 || len(coinbase.TxIn) != 1 {
		return nil, fmt.Errorf("assemble block for job %s: coinbase is malformed", j.ID)
	}
	if j.CoinbaseWitness {
		coinbase.TxIn[0].Witness = wire.TxWitness{make([]byte, 32)}
	}
	block.Transactions = make([]*wire.MsgTx, 0, 1+len(j.Template.Transactions))
	block.Transactions = append(block.Transactions, coinbase)
	for i := range j.Template.Transactions {
		tx := new(wire.MsgTx)
		if err := tx.Deserialize(bytes.NewReader(j.Template.Transactions[i].Data)); err != nil {
			return nil, fmt.Errorf("assemble block for job %s: transaction %d: %w", j.ID, i, err)
		}
		block.Transactions = append(block.Transactions, tx)
	}
	return &block, nil
}

func unixTime(sec uint32) time.Time { return time.Unix(int64(sec), 0) }
