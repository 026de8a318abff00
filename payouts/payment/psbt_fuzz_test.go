package payment

import (
	"bytes"
	"testing"

	"github.com/btcsuite/btcd/btcutil/psbt"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/wire"
)

// FuzzReadPSBT feeds ReadPSBT arbitrary bytes: it must never panic, and a
// packet it accepts must survive a serialize/parse round trip.
func FuzzReadPSBT(f *testing.F) {
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.DoubleHashH([]byte("in")), Index: 1}, nil, nil))
	tx.AddTxOut(wire.NewTxOut(12345, []byte{0x00, 0x14, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}))
	packet, err := psbt.NewFromUnsignedTx(tx)
	if err != nil {
		f.Fatal(err)
	}
	var bin bytes.Buffer
	if err := packet.Serialize(&bin); err != nil {
		f.Fatal(err)
	}
	b64, _ := packet.B64Encode()
	f.Add(bin.Bytes())
	f.Add([]byte(b64))
	f.Add([]byte(b64 + "\n"))
	f.Add([]byte("psbt\xff"))
	f.Add([]byte("not base64 !!"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ReadPSBT(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := p.Serialize(&out); err != nil {
			return // the library parses some packets it will not write
		}
		if _, err := ReadPSBT(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("re-read of a serialized packet: %v", err)
		}
	})
}
