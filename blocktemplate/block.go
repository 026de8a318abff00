package blocktemplate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/btcsuite/btcd/wire"
)

// ErrNoTemplate is returned by Block for a job rebuilt from a notify, which
// lacks the transactions a block needs.
var ErrNoTemplate = errors.New("job has no template")

// BlockBytes assembles the serialized block for a solved header: the
// header, the coinbase (coinb1 ‖ extranonce1 ‖ extranonce2 ‖ coinb2, in
// witness form with the 32-byte zero witness reserved value when the job
// commits to witnesses) and the template's transactions in template order,
// as the node gave them. The header is used as given; BlockBytes does not
// check its proof of work or merkle root. It copies bytes and decodes
// nothing: this is what goes to the node when a block is found.
func (j *Job) BlockBytes(extranonce1, extranonce2 []byte, header [80]byte) ([]byte, error) {
	if j.Template == nil {
		return nil, fmt.Errorf("assemble block for job %s: %w", j.ID, ErrNoTemplate)
	}
	cb, err := j.Coinbase(extranonce1, extranonce2)
	if err != nil {
		return nil, fmt.Errorf("assemble block for job %s: %w", j.ID, err)
	}
	sh, err := scanTx(cb)
	if err != nil || !sh.coinbase || sh.witness || sh.inputs != 1 {
		return nil, fmt.Errorf("assemble block for job %s: coinbase is malformed (%v)", j.ID, err)
	}
	size := len(header) + wire.MaxVarIntPayload + len(cb) + coinbaseWitnessSize
	for i := range j.Template.Transactions {
		size += len(j.Template.Transactions[i].Data)
	}
	b := append(make([]byte, 0, size), header[:]...)
	b = appendCompactSize(b, uint64(1+len(j.Template.Transactions)))
	if j.CoinbaseWitness {
		// BIP 144 form: version, marker and flag, inputs and outputs, the
		// input's witness (one item: 32 zero bytes), lock time.
		b = append(b, cb[:4]...)
		b = append(b, 0x00, 0x01)
		b = append(b, cb[sh.bodyStart:sh.bodyEnd]...)
		b = append(b, 0x01, 0x20)
		b = append(b, make([]byte, 32)...)
		b = append(b, cb[len(cb)-4:]...)
	} else {
		b = append(b, cb...)
	}
	for i := range j.Template.Transactions {
		b = append(b, j.Template.Transactions[i].Data...)
	}
	return b, nil
}

// coinbaseWitnessSize is what the witness form adds to a coinbase: marker,
// flag, the item count, the item's length and the 32-byte reserved value.
const coinbaseWitnessSize = 2 + 1 + 1 + 32

// appendCompactSize appends n as a Bitcoin CompactSize.
func appendCompactSize(b []byte, n uint64) []byte {
	switch {
	case n < 0xfd:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(b, 0xfd), uint16(n))
	case n <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(b, 0xfe), uint32(n))
	}
	return binary.LittleEndian.AppendUint64(append(b, 0xff), n)
}

// Block is BlockBytes decoded into a wire.MsgBlock (for tests and tools;
// it decodes every transaction, milliseconds for a full block).
func (j *Job) Block(extranonce1, extranonce2 []byte, header [80]byte) (*wire.MsgBlock, error) {
	raw, err := j.BlockBytes(extranonce1, extranonce2, header)
	if err != nil {
		return nil, err
	}
	var block wire.MsgBlock
	if err := block.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("assemble block for job %s: %w", j.ID, err)
	}
	return &block, nil
}

func unixTime(sec uint32) time.Time { return time.Unix(int64(sec), 0) }
