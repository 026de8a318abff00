package economics

import (
	"strings"
	"time"
)

// The figures one refresh publishes. JSON names are the REST API's
// (docs/economics.md); pointers are figures that may be absent (no price,
// no chain, no forecast), never zeros standing in for "unknown".

// HashpriceValue is one hashprice in its units.
type HashpriceValue struct {
	FeesSat       float64  `json:"fees_sat"`
	RewardSat     float64  `json:"reward_sat"`
	SatPerTHDay   float64  `json:"sat_per_th_day"`
	SatPerPHDay   float64  `json:"sat_per_ph_day"`
	BTCPerPHDay   float64  `json:"btc_per_ph_day"`
	FiatPerPHDay  *float64 `json:"fiat_per_ph_day,omitempty"`
	FiatPerTHDay  *float64 `json:"fiat_per_th_day,omitempty"`
	BasisOfFigure string   `json:"basis"`
}

// Network is the pool-wide figures.
type Network struct {
	Height                 int64                     `json:"height"`
	Bits                   string                    `json:"bits"`
	Difficulty             float64                   `json:"difficulty"`
	SubsidySat             int64                     `json:"subsidy_sat"`
	TemplateFeesSat        int64                     `json:"template_fees_sat"`
	Trailing               *TrailingFees             `json:"trailing_fees,omitempty"`
	ExpectedBlocksPerTHDay float64                   `json:"expected_blocks_per_th_day"`
	Hashprice              map[string]HashpriceValue `json:"hashprice"`
	RevenueBasis           string                    `json:"revenue_basis"`
	ImpliedHashrate        float64                   `json:"implied_hashrate"`
	ObservedHashrate       *float64                  `json:"observed_hashrate,omitempty"`
	ObservedBlocks         int                       `json:"observed_blocks,omitempty"`
	Retarget               Retarget                  `json:"retarget"`
	// HashpriceAfterRetarget is the revenue-basis hashprice at the
	// forecast difficulty (with its band), when a forecast exists.
	HashpriceAfterRetarget *Interval `json:"hashprice_after_retarget_sat_per_th_day,omitempty"`
}

// Prices are the prices in use.
type Prices struct {
	Currency  string       `json:"currency"`
	Power     *PriceFigure `json:"power_per_kwh,omitempty"`
	BTC       *PriceFigure `json:"btc,omitempty"`
	SatPerKWh *float64     `json:"power_sat_per_kwh,omitempty"`
	ForcedOff string       `json:"forced_off,omitempty"`
}

// Money is revenue, cost and margin per day of a worker or model, with
// intervals from the hashrate's, in sats and (with a BTC price) fiat.
type Money struct {
	RevenueSat Interval  `json:"revenue_sat_per_day"`
	CostSat    *Interval `json:"cost_sat_per_day,omitempty"`
	MarginSat  *Interval `json:"margin_sat_per_day,omitempty"`
	RevenueFi  *Interval `json:"revenue_fiat_per_day,omitempty"`
	CostFi     *Interval `json:"cost_fiat_per_day,omitempty"`
	MarginFi   *Interval `json:"margin_fiat_per_day,omitempty"`
	// Watts at the measured hashrate: TH/s × J/TH × overhead.
	Watts Interval `json:"watts"`
	// BreakEvenSatPerKWh is the power price at which the margin is zero
	// (independent of hashrate); BreakEvenPerKWh the same in fiat.
	BreakEvenSatPerKWh float64  `json:"break_even_sat_per_kwh"`
	BreakEvenPerKWh    *float64 `json:"break_even_per_kwh,omitempty"`
	// BreakEvenJPerTH is the efficiency at which the margin is zero at the
	// current power price.
	BreakEvenJPerTH *float64 `json:"break_even_j_per_th,omitempty"`
}

// WorkerFigures is everything about one worker.
type WorkerFigures struct {
	Worker   string              `json:"worker"`
	Address  string              `json:"address"`
	Device   Device              `json:"device"`
	Hashrate [3]HashrateEstimate `json:"hashrate"` // 5m, 1h, 24h
	Money    Money               `json:"money"`
	Advice   Advice              `json:"advice"`
}

// ModelFigures is the fleet view of one device model.
type ModelFigures struct {
	Model        string   `json:"model"`
	Vendor       string   `json:"vendor,omitempty"`
	JPerTH       float64  `json:"j_per_th"`
	Workers      int      `json:"workers"`
	Hashrate     Interval `json:"hashrate"`
	Money        Money    `json:"money"`
	CurtailableW float64  `json:"curtailable_watts"`
	Advice       Advice   `json:"advice"`
}

// LadderStep is one rung of the break-even ladder.
type LadderStep struct {
	Model              string   `json:"model"`
	BreakEvenSatPerKWh float64  `json:"break_even_sat_per_kwh"`
	BreakEvenPerKWh    *float64 `json:"break_even_per_kwh,omitempty"`
	// Profitable is true when the current power price is below the rung.
	Profitable *bool `json:"profitable,omitempty"`
}

// Fleet is the per-model view.
type Fleet struct {
	Models []ModelFigures `json:"models"`
	// Ladder is the models sorted by break-even power price, cheapest
	// first; CurrentSatPerKWh marks the current power price on it, and
	// CurrentRung is the number of rungs below it (models that lose money).
	Ladder           []LadderStep `json:"ladder"`
	CurrentSatPerKWh *float64     `json:"current_sat_per_kwh,omitempty"`
	CurrentRung      int          `json:"current_rung"`
	CurtailableW     float64      `json:"curtailable_watts"`
	TotalW           float64      `json:"total_watts"`
}

// Snapshot is one refresh's figures. It is never mutated once published.
type Snapshot struct {
	Time time.Time `json:"time"`
	// WorkersAsOf is when the worker statistics were read: earlier than
	// Time when the last read failed and the previous ones were kept.
	WorkersAsOf time.Time       `json:"workers_as_of"`
	Network     Network         `json:"network"`
	Prices      Prices          `json:"prices"`
	Workers     []WorkerFigures `json:"-"`
	Fleet       Fleet           `json:"-"`

	byAddress map[string][]int
	in        inputs // what the figures were computed from (for what-if)
}

// WorkersOf returns the figures of one address's workers (all when
// address is "").
func (s *Snapshot) WorkersOf(address string) []WorkerFigures {
	if address == "" {
		return s.Workers
	}
	idx, ok := s.byAddress[address]
	if !ok {
		// bech32 is case-insensitive and stored lower case: BC1Q… is bc1q….
		idx = s.byAddress[strings.ToLower(address)]
	}
	out := make([]WorkerFigures, len(idx))
	for i, j := range idx {
		out[i] = s.Workers[j]
	}
	return out
}
