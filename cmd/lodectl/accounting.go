package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/lode-pool/lode/internal/btcaddr"
	"github.com/lode-pool/lode/internal/redisstore"
	"github.com/lode-pool/lode/payouts"
)

func init() {
	register("balances", "list unpaid balances and the pool fee account (Redis)", runBalances)
	register("blocks", "list found blocks with status and reward (Redis)", runBlocks)
	register("miner", "show one payout address: balance, workers, hashrate, recent shares (Redis)", runMiner)
}

// accountingFlags are the settings every accounting command takes: -config
// lode.yaml and the flags that override it (see settings).
type accountingFlags = settings

func newAccountingFlags(name string, stderr io.Writer) (*flag.FlagSet, *accountingFlags) {
	fs := flag.NewFlagSet("lodectl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, newSettings(fs)
}

// accountingRun parses flags, connects, and runs body; it prints errors and
// maps them to exit codes (2: usage, 1: failure).
func accountingRun(name string, args []string, stdout, stderr io.Writer, nargs int, usage string,
	body func(ctx context.Context, s *redisstore.Store, args []string, stdout io.Writer) error) int {
	fs, f := newAccountingFlags(name, stderr)
	return accountingRunFlags(name, fs, f, args, stdout, stderr, nargs, usage, body)
}

func accountingRunFlags(name string, fs *flag.FlagSet, f *accountingFlags, args []string, stdout, stderr io.Writer,
	nargs int, usage string, body func(ctx context.Context, s *redisstore.Store, args []string, stdout io.Writer) error) int {
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lodectl %s [flags]%s\n", name, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != nargs {
		fs.Usage()
		return 2
	}
	if err := f.load(); err != nil {
		fmt.Fprintf(stderr, "lodectl %s: %v\n", name, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	s, err := f.open(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "lodectl %s: %v\n", name, err)
		return 1
	}
	defer s.Client().Close()
	if err := body(ctx, s, fs.Args(), stdout); err != nil {
		fmt.Fprintf(stderr, "lodectl %s: %v\n", name, err)
		return 1
	}
	return 0
}

// btc formats satoshis as BTC with all 8 decimals.
func btc(sats int64) string {
	sign := ""
	if sats < 0 {
		sign, sats = "-", -sats
	}
	return fmt.Sprintf("%s%d.%08d", sign, sats/1e8, sats%1e8)
}

// hashrate formats hashes per second with an SI prefix.
func hashrate(h float64) string {
	units := []string{"H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s"}
	i := 0
	for h >= 1000 && i < len(units)-1 {
		h /= 1000
		i++
	}
	return fmt.Sprintf("%.2f %s", h, units[i])
}

func runBalances(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return accountingRun("balances", args, stdout, stderr, 0, "", printBalances)
}

func printBalances(ctx context.Context, s *redisstore.Store, _ []string, stdout io.Writer) error {
	bal, err := s.Balances(ctx)
	if err != nil {
		return err
	}
	fee, err := s.FeeBalance(ctx)
	if err != nil {
		return err
	}
	addrs := make([]string, 0, len(bal))
	var total int64
	for a, v := range bal {
		addrs = append(addrs, a)
		total += v
	}
	// Largest first; equal balances by address so the output is stable.
	sort.Slice(addrs, func(i, j int) bool {
		if bal[addrs[i]] != bal[addrs[j]] {
			return bal[addrs[i]] > bal[addrs[j]]
		}
		return addrs[i] < addrs[j]
	})
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ADDRESS\tSATOSHIS\tBTC\t")
	for _, a := range addrs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", term(a), bal[a], btc(bal[a]))
	}
	fmt.Fprintf(tw, "(pool fee account)\t%d\t%s\t\n", fee, btc(fee))
	fmt.Fprintf(tw, "(total, %d addresses)\t%d\t%s\t\n", len(addrs), total+fee, btc(total+fee))
	return tw.Flush()
}

func runBlocks(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	// -n is parsed here, before the shared flags, so that it stays local to
	// this command.
	limit := 50
	fs, f := newAccountingFlags("blocks", stderr)
	fs.IntVar(&limit, "n", limit, "show the latest n blocks (0: all)")
	return accountingRunFlags("blocks", fs, f, args, stdout, stderr, 0, "",
		func(ctx context.Context, s *redisstore.Store, _ []string, stdout io.Writer) error {
			return printBlocks(ctx, s, limit, stdout)
		})
}

func printBlocks(ctx context.Context, s *redisstore.Store, limit int, stdout io.Writer) error {
	blocks, err := s.Blocks(ctx, limit)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "HEIGHT\tHASH\tSTATUS\tCONFIRMATIONS\tREWARD\tFEE\tMINERS\tFINDER\tFOUND")
	for _, b := range blocks {
		reward, fee := "-", "-"
		if b.Reward > 0 {
			reward, fee = btc(b.Reward), btc(b.Fee)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", b.Height, b.Hash, term(string(b.Status)), b.Confirmations,
			reward, fee, b.Contributors, term(b.Finder), b.Time.UTC().Format(time.RFC3339))
	}
	if len(blocks) == 0 {
		fmt.Fprintln(tw, "(no blocks found yet)")
	}
	return tw.Flush()
}

func runMiner(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	return accountingRun("miner", args, stdout, stderr, 1, " <address>", printMiner)
}

// minerRecentBlocks is how many credits from blocks miner prints, newest
// first; minerScanBlocks how many of the latest blocks it looks through for
// them. Credits arrive only when a block matures (100 blocks after it was
// found), so the newest blocks of a busy pool are all immature: the credits
// are found further back.
const (
	minerRecentBlocks = 20
	minerScanBlocks   = 2000
)

// minerRecentShares bounds the recent shares printed.
const minerRecentShares = 10

func printMiner(ctx context.Context, s *redisstore.Store, args []string, stdout io.Writer) error {
	// The store keys addresses as btcutil encodes them (lowercase bech32),
	// whatever case the operator types.
	addr, err := btcaddr.CanonicalAny(args[0])
	if err != nil {
		return err
	}
	bal, err := s.Balance(ctx, addr)
	if err != nil {
		return err
	}
	now := time.Now()
	st, err := s.MinerStats(ctx, addr, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "address:   %s\n", addr)
	fmt.Fprintf(stdout, "balance:   %d sat (%s BTC)\n", bal, btc(bal))
	fmt.Fprintf(stdout, "hashrate:  %s (10m)  %s (1h)  %s (24h)\n",
		hashrate(st.Hashrate10m), hashrate(st.Hashrate1h), hashrate(st.Hashrate24h))

	names := make([]string, 0, len(st.Workers))
	for n := range st.Workers {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(stdout, "\nworkers (%d):\n", len(names))
	tw := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  WORKER\tLAST SHARE\tACCEPTED\tREJECTED\tSTALE\tHASHRATE (1h)")
	for _, n := range names {
		full := addr
		if n != "" {
			full = addr + "." + n
		}
		ws, err := s.WorkerStats(ctx, full, now)
		if err != nil {
			return err
		}
		label := term(n)
		if n == "" {
			label = "(default)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%s\n", label, st.Workers[n].UTC().Format(time.RFC3339),
			ws.Accepted, ws.Rejected, ws.Stale, hashrate(ws.Hashrate1h))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(stdout, "\nrecent shares:")
	tw = tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TIME\tWORKER\tDIFFICULTY\tHASH DIFFICULTY")
	for i, r := range st.Recent {
		if i == minerRecentShares {
			break
		}
		fmt.Fprintf(tw, "  %s\t%s\t%g\t%.6g\n", r.Time.UTC().Format(time.RFC3339Nano), term(r.WorkerName), r.Difficulty, r.HashDifficulty)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	blocks, err := s.Blocks(ctx, minerScanBlocks)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\ncredits from recent blocks:")
	tw = tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  HEIGHT\tHASH\tSTATUS\tSATOSHIS\tFOUND")
	// The credited blocks' credits to addr, in one round trip.
	var credited []payouts.Block
	var hashes []string
	waiting := 0
	for _, b := range blocks {
		switch b.Status {
		case payouts.StatusCredited:
			credited = append(credited, b)
			hashes = append(hashes, b.Hash.String())
		case payouts.StatusPending, payouts.StatusImmature:
			waiting++
		}
	}
	amounts, err := s.AddressCredits(ctx, hashes, addr)
	if err != nil {
		return err
	}
	shown := 0
	for i, b := range credited {
		if shown == minerRecentBlocks {
			break
		}
		if amounts[i] > 0 {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\n", b.Height, b.Hash, term(string(b.Status)), amounts[i], b.Time.UTC().Format(time.RFC3339))
			shown++
		}
	}
	if shown == 0 {
		fmt.Fprintf(tw, "  (none in the latest %d blocks)\n", len(blocks))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if waiting > 0 {
		fmt.Fprintf(stdout, "%d newer block(s) not yet mature: their credits come at maturity\n", waiting)
	}
	return nil
}
