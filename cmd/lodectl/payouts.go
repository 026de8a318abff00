package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lode-pool/lode/blocktemplate/bitcoind"
	"github.com/lode-pool/lode/internal/btcaddr"
	"github.com/lode-pool/lode/internal/config"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts/payment"
)

func init() {
	register("payouts", "payouts: list | show <id> | run [--dry-run] | broadcast <signed.psbt> | threshold <address> <sats> | abandon <id>", runPayouts)
}

const payoutsUsage = `usage: lodectl payouts <subcommand> [flags] [arguments]
  list                          recent payouts (stuck ones flagged) and totals
  show <id>                     one payout: state, txid, outputs, fee (-psbt-out FILE saves a cold PSBT)
  run [-dry-run]                pay balances that reached their threshold now (dry: what would be paid, with the fee)
  broadcast <signed.psbt>       finalize a signed PSBT of a cold payout, broadcast it, record it
  threshold <address> <sats>    set an address's payout threshold (0 removes the override)
  abandon <id>                  give a payout's debits back, only if its transaction can never be mined
Run "lodectl payouts <subcommand> -h" for the flags.`

func runPayouts(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, payoutsUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "list":
		return payoutsList(args[1:], stdout, stderr)
	case "show":
		return payoutsShow(args[1:], stdout, stderr)
	case "run":
		return payoutsRun(args[1:], stdout, stderr)
	case "broadcast":
		return payoutsBroadcast(args[1:], stdout, stderr)
	case "threshold":
		return payoutsThreshold(args[1:], stdout, stderr)
	case "abandon":
		return payoutsAbandon(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "lodectl payouts: unknown subcommand %q\n%s\n", args[0], payoutsUsage)
	return 2
}

// nodeFlags override the node and payout settings of lode.yaml for one
// command. Their defaults are the config's; a flag not given leaves the
// file's value, so with -config lode.yaml a dry run computes what the
// daemon would pay.
type nodeFlags struct {
	st                                              *settings
	rpcURL, rpcUser, rpcPasswordEnv, rpcCookie      string
	poolAddress, signing, keyEnv, keyFile, feePayer string
	threshold                                       int64
	maxOutputs, confTarget                          int
	feeFloor, feeCap                                int64 // sat/vB
	stuckAfter                                      time.Duration
	urlGiven                                        bool // -rpc on the command line
}

func addNodeFlags(fs *flag.FlagSet, st *settings) *nodeFlags {
	d := config.Defaults()
	n := &nodeFlags{st: st}
	fs.StringVar(&n.rpcURL, "rpc", d.NodeURL(), "node RPC URL (overrides node.rpc_address and node.tls)")
	fs.StringVar(&n.rpcUser, "rpc-user", "", "node RPC user (overrides node.rpc_user)")
	fs.StringVar(&n.rpcPasswordEnv, "rpc-password-env", "LODE_RPC_PASSWORD", "environment variable holding the RPC password (overrides node.rpc_password)")
	fs.StringVar(&n.rpcCookie, "rpc-cookie", "", "Bitcoin Core cookie file instead of user/password (overrides node.rpc_cookie_file)")
	fs.StringVar(&n.poolAddress, "pool-address", "", "the pool's payout address, coinbase and change (overrides pool.payout_address)")
	fs.StringVar(&n.signing, "signing", d.Payouts.Signing, "hot (sign with the key) or cold (write PSBTs) (overrides payouts.signing)")
	fs.StringVar(&n.keyEnv, "key-env", "", "hot signing: environment variable holding the WIF key (overrides payouts.key)")
	fs.StringVar(&n.keyFile, "key-file", "", "hot signing: file holding the WIF key (overrides payouts.key)")
	fs.StringVar(&n.feePayer, "fee-payer", d.Payouts.FeePayer, "pool (fee account pays) or miners (pro rata) (overrides payouts.fee_payer)")
	fs.Int64Var(&n.threshold, "threshold", d.Payouts.Threshold, "default payout threshold, satoshis (overrides payouts.threshold)")
	fs.IntVar(&n.maxOutputs, "max-outputs", d.Payouts.MaxOutputs, "outputs per transaction (overrides payouts.max_outputs)")
	fs.IntVar(&n.confTarget, "conf-target", d.Payouts.ConfTarget, "fee estimate target, blocks (overrides payouts.conf_target)")
	fs.Int64Var(&n.feeFloor, "fee-floor", d.Payouts.FeeRateFloor, "lowest fee rate, sat/vB (overrides payouts.fee_rate_floor)")
	fs.Int64Var(&n.feeCap, "fee-cap", d.Payouts.FeeRateCap, "highest fee rate, sat/vB (overrides payouts.fee_rate_cap)")
	fs.DurationVar(&n.stuckAfter, "stuck-after", d.Payouts.UnconfirmedAlert, "flag payouts unconfirmed this long (overrides payouts.unconfirmed_alert)")
	st.overrides = append(st.overrides, n.apply)
	return n
}

// apply sets the flags given on the command line over the config.
func (n *nodeFlags) apply(c *config.Config, set map[string]bool) {
	n.urlGiven = set["rpc"]
	if set["rpc-user"] || set["rpc-password-env"] {
		c.Node.RPCCookieFile = ""
		c.Node.RPCPassword = config.Secret{Env: n.rpcPasswordEnv}
	}
	if set["rpc-user"] {
		c.Node.RPCUser = n.rpcUser
	}
	if set["rpc-cookie"] {
		c.Node.RPCCookieFile = n.rpcCookie
	}
	if set["pool-address"] {
		c.Pool.PayoutAddress = n.poolAddress
	}
	if set["signing"] {
		c.Payouts.Signing = n.signing
	}
	if set["key-env"] || set["key-file"] {
		c.Payouts.Key = config.Secret{Env: n.keyEnv, File: n.keyFile}
	}
	if set["fee-payer"] {
		c.Payouts.FeePayer = n.feePayer
	}
	if set["threshold"] {
		c.Payouts.Threshold = n.threshold
	}
	if set["max-outputs"] {
		c.Payouts.MaxOutputs = n.maxOutputs
	}
	if set["conf-target"] {
		c.Payouts.ConfTarget = n.confTarget
	}
	if set["fee-floor"] {
		c.Payouts.FeeRateFloor = n.feeFloor
	}
	if set["fee-cap"] {
		c.Payouts.FeeRateCap = n.feeCap
	}
	if set["stuck-after"] {
		c.Payouts.UnconfirmedAlert = n.stuckAfter
	}
}

// processor builds the processor the daemon would run: the same settings
// (config.PaymentConfig) from the same file, with the command line's
// overrides. Cold mode (and dry runs) need no key.
func (n *nodeFlags) processor(s *redisstore.Store, forceCold bool) (*payment.Processor, func(), error) {
	cfg := n.st.cfg
	if cfg.Pool.PayoutAddress == "" {
		return nil, nil, fmt.Errorf("no pool address: set pool.payout_address in the file given with -config, or -pool-address")
	}
	pc, err := cfg.PaymentConfig(forceCold, os.Getenv, os.ReadFile)
	if err != nil {
		return nil, nil, err
	}
	bc := bitcoind.Config{URL: cfg.NodeURL(), Timeout: cfg.Node.Timeout}
	if n.urlGiven {
		bc.URL = n.rpcURL
	}
	if cfg.Node.RPCCookieFile != "" {
		bc.CookieFile = cfg.Node.RPCCookieFile
	} else {
		bc.User = cfg.Node.RPCUser
		if cfg.Node.RPCPassword.IsSet() {
			pw, err := cfg.Node.RPCPassword.Resolve()
			if err != nil {
				return nil, nil, fmt.Errorf("node.rpc_password: %w", err)
			}
			bc.Password = pw
		} else {
			bc.Password = os.Getenv(n.rpcPasswordEnv)
		}
	}
	node, err := bitcoind.New(bc, nil)
	if err != nil {
		return nil, nil, err
	}
	p, err := payment.New(pc, s, node)
	if err != nil {
		node.Close()
		return nil, nil, err
	}
	return p, node.Close, nil
}

// payoutsCommand parses the Redis flags (plus extra ones), connects and runs
// body; exit codes as accountingRun: 2 usage, 1 failure.
func payoutsCommand(name string, args []string, stdout, stderr io.Writer, nargs int, usage string,
	extra func(fs *flag.FlagSet, st *settings), body func(ctx context.Context, s *redisstore.Store, args []string) error) int {
	fs, f := newAccountingFlags("payouts "+name, stderr)
	if extra != nil {
		extra(fs, f)
	}
	return accountingRunFlags("payouts "+name, fs, f, args, stdout, stderr, nargs, usage,
		func(ctx context.Context, s *redisstore.Store, args []string, _ io.Writer) error {
			return body(ctx, s, args)
		})
}

func payoutsList(args []string, stdout, stderr io.Writer) int {
	var limit int
	return payoutsCommand("list", args, stdout, stderr, 0, "", func(fs *flag.FlagSet, st *settings) {
		fs.IntVar(&limit, "limit", 50, "show this many recent payouts")
	}, func(ctx context.Context, s *redisstore.Store, _ []string) error {
		list, err := s.Payouts(ctx, limit)
		if err != nil {
			return err
		}
		tot, err := s.Totals(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATE\tCREATED\tOUTPUTS\tPAID BTC\tFEE SAT\tCONF\tTXID\tNOTE")
		stuck := 0
		for _, p := range list {
			state := string(p.State)
			if p.State == payment.StateStuck {
				state = "STUCK"
				stuck++
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", p.ID, state, p.Created.UTC().Format(time.DateTime),
				len(p.Outputs), btc(p.Paid()), p.Fee, p.Confirmations, orDash(p.TxID), broadcastNote(p))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "total: %d payouts, %s BTC paid, %d sat fees\n", tot.Payouts, btc(tot.Paid), tot.Fees)
		if stuck > 0 {
			fmt.Fprintf(stdout, "%d payout(s) STUCK: see docs/payouts.md, \"Recovering a stuck payout\"\n", stuck)
		}
		// The list may not reach back to an old failed payout: ask the
		// open ones.
		open, err := s.OpenPayouts(ctx)
		if err != nil {
			return err
		}
		printHalted(stdout, open)
		return nil
	})
}

// broadcastNote says why a payout is not on the network: the node's
// refusal, or that it could not be asked.
func broadcastNote(p *payment.Payout) string {
	if !p.BroadcastFailed() {
		if p.State == payment.StatePending {
			return "not yet accepted by the node"
		}
		return p.LastError
	}
	if p.Refusal != "" {
		return fmt.Sprintf("REFUSED by the node (%d failed broadcasts): %s", p.BroadcastFailures, p.Refusal)
	}
	return fmt.Sprintf("BROADCAST FAILED (%d times, node not reachable?): %s", p.BroadcastFailures, p.LastError)
}

// printHalted prints the halt alert for the payouts holding new ones back.
func printHalted(w io.Writer, payouts []*payment.Payout) {
	var ids []string
	for _, p := range payouts {
		if p.AwaitingBroadcast() {
			ids = append(ids, strconv.FormatInt(p.ID, 10))
		}
	}
	if len(ids) == 0 {
		return
	}
	fmt.Fprintf(w, "new payouts HALTED: payout(s) %s not on the network; each run re-broadcasts the same transaction. "+
		"See docs/payouts.md, \"When a broadcast fails\" (lodectl payouts show <id>; abandon only if it can never be mined)\n",
		strings.Join(ids, ", "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func payoutsShow(args []string, stdout, stderr io.Writer) int {
	var psbtOut string
	return payoutsCommand("show", args, stdout, stderr, 1, " <id>", func(fs *flag.FlagSet, st *settings) {
		fs.StringVar(&psbtOut, "psbt-out", "", "write the unsigned PSBT (base64) of a cold payout to this file")
	}, func(ctx context.Context, s *redisstore.Store, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("payout id %q is not a number", args[0])
		}
		p, err := s.Payout(ctx, id)
		if err != nil {
			return err
		}
		printPayout(stdout, p)
		if psbtOut != "" {
			if p.PSBT == "" {
				return fmt.Errorf("payout %d has no PSBT (hot signed)", id)
			}
			if err := os.WriteFile(psbtOut, []byte(p.PSBT+"\n"), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "psbt written to %s\n", psbtOut)
		}
		return nil
	})
}

func printPayout(w io.Writer, p *payment.Payout) {
	fmt.Fprintf(w, "payout %d: %s\n", p.ID, p.State)
	fmt.Fprintf(w, "  created     %s\n", p.Created.UTC().Format(time.RFC3339))
	if !p.BroadcastAt.IsZero() {
		fmt.Fprintf(w, "  broadcast   %s\n", p.BroadcastAt.UTC().Format(time.RFC3339))
	}
	if !p.ConfirmedAt.IsZero() {
		fmt.Fprintf(w, "  confirmed   %s (%d confirmations, block %s)\n", p.ConfirmedAt.UTC().Format(time.RFC3339), p.Confirmations, p.BlockHash)
	}
	fmt.Fprintf(w, "  txid        %s\n", orDash(p.TxID))
	fmt.Fprintf(w, "  unsigned id %s\n", p.UnsignedTxID)
	fmt.Fprintf(w, "  fee         %d sat at %d sat/kvB, paid by %s (fee account debit %d)\n", p.Fee, p.FeeRate, p.FeePayer, p.FeeAccountDebit)
	if p.ChangeVout >= 0 {
		fmt.Fprintf(w, "  change      %s BTC (output %d)\n", btc(p.ChangeValue), p.ChangeVout)
	}
	if p.BroadcastFailed() {
		fmt.Fprintf(w, "  NOT ON THE NETWORK: %s; new payouts are halted until the node takes it or it is abandoned\n", broadcastNote(p))
	}
	if p.LastError != "" {
		fmt.Fprintf(w, "  last error  %s\n", p.LastError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ADDRESS\tDEBIT BTC\tPAID BTC")
	for _, o := range p.Outputs {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", o.Address, btc(o.Debit), btc(o.Amount))
	}
	fmt.Fprintln(tw, "  INPUT\tBTC\t")
	for _, in := range p.Inputs {
		fmt.Fprintf(tw, "  %s\t%s\t\n", in.OutPoint, btc(in.Value))
	}
	tw.Flush()
}

func payoutsRun(args []string, stdout, stderr io.Writer) int {
	var n *nodeFlags
	var dry bool
	var psbtDir string
	return payoutsCommand("run", args, stdout, stderr, 0, "", func(fs *flag.FlagSet, st *settings) {
		n = addNodeFlags(fs, st)
		fs.BoolVar(&dry, "dry-run", false, "show what would be paid and the fees; change nothing")
		fs.StringVar(&psbtDir, "psbt-dir", "", "cold signing: also write each new PSBT to DIR/payout-<id>.psbt")
	}, func(ctx context.Context, s *redisstore.Store, _ []string) error {
		p, closeNode, err := n.processor(s, dry)
		if err != nil {
			return err
		}
		defer closeNode()
		res, runErr := p.RunOnce(ctx, dry)
		if res == nil {
			return runErr
		}
		printResult(stdout, res)
		if psbtDir != "" && !dry {
			paths, err := payment.WritePSBTFiles(psbtDir, res.Payouts)
			for _, path := range paths {
				fmt.Fprintf(stdout, "psbt written to %s\n", path)
			}
			if err != nil {
				return errors.Join(runErr, err)
			}
		}
		return runErr
	})
}

func printResult(w io.Writer, res *payment.Result) {
	verb := "paid"
	if res.DryRun {
		verb = "would pay"
	}
	if res.FeeRateSource != "" { // not asked when nothing was due or payouts are halted
		fmt.Fprintf(w, "fee rate %d sat/kvB (%s)\n", res.FeeRate, res.FeeRateSource)
	}
	for _, r := range res.Resolved {
		fmt.Fprintf(w, "earlier payout %d is now %s (%s)\n", r.ID, r.State, orDash(r.TxID))
	}
	for _, po := range res.Payouts {
		id := "-"
		if po.ID > 0 {
			id = strconv.FormatInt(po.ID, 10)
		}
		fmt.Fprintf(w, "payout %s %s %s BTC to %d addresses, fee %d sat (%s pays), %d inputs, state %s, txid %s\n",
			id, verb, btc(po.Paid()), len(po.Outputs), po.Fee, po.FeePayer, len(po.Inputs), orDash(string(po.State)), orDash(po.TxID))
		for _, o := range po.Outputs {
			fmt.Fprintf(w, "    %s %s BTC\n", o.Address, btc(o.Amount))
		}
	}
	for _, sk := range res.Skipped {
		fmt.Fprintf(w, "skipped %s (balance %s BTC): %s\n", sk.Address, btc(sk.Balance), sk.Reason)
	}
	for _, f := range res.Failed {
		if errors.Is(f.Err, redisstore.ErrNotReplicated) {
			// The commit stands on the primary (balances debited there) but
			// too few replicas acknowledged it: nothing was broadcast, and a
			// later run broadcasts it once they hold it (docs/payouts.md).
			fmt.Fprintf(w, "NOT BROADCAST (committed on the Redis primary, not yet acknowledged by its replicas; a later run sends it) %s: %v\n", strings.Join(f.Addresses, " "), f.Err)
			continue
		}
		fmt.Fprintf(w, "NOT PAID (balances intact) %s: %v\n", strings.Join(f.Addresses, " "), f.Err)
	}
	for _, u := range res.UnusableUTXOs {
		fmt.Fprintf(w, "unusable pool utxo %s\n", u)
	}
	for _, h := range res.Halted {
		fmt.Fprintf(w, "payout %d (txid %s) is not on the network: %s\n", h.ID, orDash(h.TxID), broadcastNote(h))
	}
	printHalted(w, res.Halted)
	if len(res.Payouts) == 0 && len(res.Skipped) == 0 && len(res.Failed) == 0 && len(res.Halted) == 0 {
		fmt.Fprintln(w, "nothing due: no balance has reached its payout threshold")
	}
	if !res.DryRun {
		fmt.Fprintf(w, "%d payout(s) open, %d stuck\n", res.Open, res.Stuck)
	}
}

func payoutsBroadcast(args []string, stdout, stderr io.Writer) int {
	var n *nodeFlags
	return payoutsCommand("broadcast", args, stdout, stderr, 1, " <signed.psbt>", func(fs *flag.FlagSet, st *settings) {
		n = addNodeFlags(fs, st)
	}, func(ctx context.Context, s *redisstore.Store, args []string) error {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		packet, err := payment.ReadPSBT(f)
		f.Close()
		if err != nil {
			return err
		}
		p, closeNode, err := n.processor(s, true)
		if err != nil {
			return err
		}
		defer closeNode()
		po, err := p.BroadcastPSBT(ctx, packet)
		if po != nil {
			fmt.Fprintf(stdout, "payout %d: %s, txid %s\n", po.ID, po.State, po.TxID)
		}
		return err
	})
}

func payoutsThreshold(args []string, stdout, stderr io.Writer) int {
	var st *settings
	return payoutsCommand("threshold", args, stdout, stderr, 2, " <address> <sats>", func(_ *flag.FlagSet, s *settings) {
		st = s
	}, func(ctx context.Context, s *redisstore.Store, args []string) error {
		params := st.cfg.ChainParams()
		// Stored under the spelling the balances use (lowercase bech32).
		addr, err := btcaddr.Canonical(args[0], params)
		if err != nil {
			return fmt.Errorf("%q is not a %s address", args[0], params.Name)
		}
		sats, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return fmt.Errorf("threshold %q: want satoshis", args[1])
		}
		if err := payment.CheckThreshold(sats); err != nil { // the admin API's rule
			return err
		}
		if err := s.SetThreshold(ctx, addr, sats); err != nil {
			return err
		}
		if sats == 0 {
			fmt.Fprintf(stdout, "%s: threshold override removed\n", addr)
		} else {
			fmt.Fprintf(stdout, "%s: payout threshold %s BTC\n", addr, btc(sats))
		}
		return nil
	})
}

func payoutsAbandon(args []string, stdout, stderr io.Writer) int {
	var n *nodeFlags
	return payoutsCommand("abandon", args, stdout, stderr, 1, " <id>", func(fs *flag.FlagSet, st *settings) {
		n = addNodeFlags(fs, st)
	}, func(ctx context.Context, s *redisstore.Store, args []string) error {
		id, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("payout id %q is not a number", args[0])
		}
		p, closeNode, err := n.processor(s, true)
		if err != nil {
			return err
		}
		defer closeNode()
		po, lost, err := p.Abandon(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "payout %d abandoned: %s BTC credited back to %d addresses\n", po.ID, btc(po.Debited()), len(po.Outputs))
		for _, in := range lost {
			fmt.Fprintf(stdout, "input %s (%s BTC) was spent elsewhere and is no longer a pool UTXO\n", in.OutPoint, btc(in.Value))
		}
		return nil
	})
}
