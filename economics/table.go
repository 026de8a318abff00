package economics

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Tables for `lodectl economics [address]`: the command fetches the REST
// answers and prints them with these, so the CLI and the API show the same
// figures.

// siHashrate formats H/s with an SI prefix.
func siHashrate(h float64) string {
	units := []string{"H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s", "EH/s", "ZH/s"}
	i := 0
	for h >= 1000 && i < len(units)-1 {
		h /= 1000
		i++
	}
	return fmt.Sprintf("%.2f %s", h, units[i])
}

func intervalSat(i *Interval) string {
	if i == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f [%.0f, %.0f]", i.Value, i.Low, i.High)
}

// WriteOverview prints the network figures, hashprice on each basis, the
// retarget forecast and the prices.
func WriteOverview(w io.Writer, o Overview) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n := o.Network
	fmt.Fprintf(tw, "height\t%d\n", n.Height)
	fmt.Fprintf(tw, "difficulty\t%.6g\n", n.Difficulty)
	fmt.Fprintf(tw, "subsidy\t%d sat\n", n.SubsidySat)
	fmt.Fprintf(tw, "template fees\t%d sat\n", n.TemplateFeesSat)
	if t := n.Trailing; t != nil {
		fmt.Fprintf(tw, "trailing fees (%d blocks, %s)\tmean %.0f sat, median %.0f sat\n", t.Blocks, t.Source, t.Mean, t.Median)
	}
	for _, basis := range []string{BasisTemplate, BasisTrailingMean, BasisTrailingMedian} {
		if hp, ok := n.Hashprice[basis]; ok {
			line := fmt.Sprintf("%.2f sat/TH/day, %.8f BTC/PH/day", hp.SatPerTHDay, hp.BTCPerPHDay)
			if hp.FiatPerPHDay != nil {
				line += fmt.Sprintf(", %.2f %s/PH/day", *hp.FiatPerPHDay, o.Prices.Currency)
			}
			fmt.Fprintf(tw, "hashprice (%s)\t%s\n", basis, line)
		}
	}
	fmt.Fprintf(tw, "network hashrate\timplied %s", siHashrate(n.ImpliedHashrate))
	if n.ObservedHashrate != nil {
		fmt.Fprintf(tw, ", observed %s over %d blocks", siHashrate(*n.ObservedHashrate), n.ObservedBlocks)
	}
	fmt.Fprintln(tw)
	if r := n.Retarget; r.Available {
		fmt.Fprintf(tw, "retarget at %d\t%+.2f %% (%.6g … %.6g), ETA %s\n", r.NextHeight, r.ChangePercent, r.Low, r.High, r.ETA.UTC().Format("2006-01-02 15:04 MST"))
	} else {
		fmt.Fprintf(tw, "retarget at %d\tno forecast: %s\n", r.NextHeight, r.Reason)
	}
	price := func(name string, p *PriceFigure) {
		switch {
		case p == nil:
			fmt.Fprintf(tw, "%s\tnone\n", name)
		case p.Stale:
			fmt.Fprintf(tw, "%s\t%g (%s, STALE: %.0f s old, not used)\n", name, p.Value, p.Source, p.AgeSeconds)
		default:
			fmt.Fprintf(tw, "%s\t%g (%s, %.0f s old)\n", name, p.Value, p.Source, p.AgeSeconds)
		}
	}
	price("power per kWh ("+o.Prices.Currency+")", o.Prices.Power)
	price("BTC price", o.Prices.BTC)
	if o.Prices.ForcedOff != "" {
		fmt.Fprintf(tw, "forced off\t%s\n", o.Prices.ForcedOff)
	}
	fmt.Fprintf(tw, "workers\t%d, %s, %.0f W curtailable\n", o.Workers, siHashrate(o.Hashrate), o.CurtailableW)
	return tw.Flush()
}

// WriteWorkers prints one line per worker: model and its source, hashrate
// with its interval (the revenue window's, index 1 = 1 h by default),
// revenue, cost, margin per day, break-even and advice.
func WriteWorkers(w io.Writer, a WorkersAnswer, window int) error {
	if window < 0 || window > 2 {
		window = 1
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "WORKER\tMODEL (SOURCE)\tHASHRATE [95 %]\tREVENUE sat/d\tCOST sat/d\tMARGIN sat/d\tBREAK-EVEN sat/kWh\tADVICE")
	for _, f := range a.Workers {
		h := f.Hashrate[window]
		hr := siHashrate(h.Hashrate) + " [" + siHashrate(h.Low) + ", " + siHashrate(h.High) + "]"
		if h.Method == MethodUpperBound {
			hr = "< " + siHashrate(h.High)
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\t%s\t%.0f\t%s\n", f.Worker, f.Device.Model, f.Device.Source, hr,
			intervalSat(&f.Money.RevenueSat), intervalSat(f.Money.CostSat), intervalSat(f.Money.MarginSat), f.Money.BreakEvenSatPerKWh, f.Advice.Advice)
	}
	t := a.Total
	fmt.Fprintf(tw, "TOTAL (%d)\t\t%s\t%s\t%s\t%s\t\t%v\n", t.Workers, siHashrate(t.Hashrate.Value), intervalSat(&t.RevenueSat), intervalSat(t.CostSat), intervalSat(t.MarginSat), t.Advice)
	return tw.Flush()
}
