package blocks

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// Block is a found block as the nodes get it: its serialization (what
// blocktemplate.Job.BlockBytes assembles and the journal holds) and its
// hash. Nothing decodes its transactions on the way to the nodes (a full
// mainnet block takes milliseconds to decode and encode again); the record
// reads only the header and the coinbase (Head).
type Block struct {
	Hash chainhash.Hash // internal order
	Raw  []byte
}

// newBlock checks that raw starts with a header and a transaction count
// and takes the hash from the header.
func newBlock(raw []byte) (Block, error) {
	if len(raw) < wire.MaxBlockHeaderPayload+1 {
		return Block{}, fmt.Errorf("block of %d bytes: no header and transactions", len(raw))
	}
	return Block{Hash: chainhash.DoubleHashH(raw[:wire.MaxBlockHeaderPayload]), Raw: raw}, nil
}

// Head decodes the header and the coinbase, all a found block's record
// needs (payouts.NewFoundBlock reads the header and the first transaction),
// as a wire.MsgBlock holding only those.
func (b Block) Head() (*wire.MsgBlock, error) {
	var m wire.MsgBlock
	rd := bytes.NewReader(b.Raw)
	if err := m.Header.Deserialize(rd); err != nil {
		return nil, fmt.Errorf("block %s: header: %w", b.Hash, err)
	}
	n, err := wire.ReadVarInt(rd, 0)
	if err != nil {
		return nil, fmt.Errorf("block %s: transaction count: %w", b.Hash, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("block %s: %w", b.Hash, errNoCoinbase)
	}
	cb := new(wire.MsgTx)
	if err := cb.Deserialize(rd); err != nil {
		return nil, fmt.Errorf("block %s: coinbase: %w", b.Hash, err)
	}
	m.Transactions = []*wire.MsgTx{cb}
	return &m, nil
}

var errNoCoinbase = errors.New("no transactions")
