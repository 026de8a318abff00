package payment

import (
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/txscript"
)

// SetTestHooks installs functions called right after a payout is committed
// and right after the node accepted it; the crash tests kill the process
// there.
func SetTestHooks(p *Processor, afterCommit, afterBroadcast func(*Payout)) {
	p.afterCommit, p.afterBroadcast = afterCommit, afterBroadcast
}

func txscriptExtract(script []byte, params *chaincfg.Params) (txscript.ScriptClass, []btcutil.Address, int, error) {
	return txscript.ExtractPkScriptAddrs(script, params)
}
