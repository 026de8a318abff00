package economics

import (
	"fmt"
	"time"
)

// Interval is a value with its 95 % interval.
type Interval struct {
	Value float64 `json:"value"`
	Low   float64 `json:"low"`
	High  float64 `json:"high"`
}

// Advice values.
const (
	AdviceRun     = "run"
	AdviceCurtail = "curtail"
	AdviceHold    = "hold"
)

// Advice is the current advice for a worker or a model.
type Advice struct {
	Advice string    `json:"advice"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
}

// adviceState is the advisor's memory of one key.
type adviceState struct {
	current        Advice
	candidate      string
	candidateSince time.Time
	seen           uint64 // refresh generation that last touched it
}

// Advisor turns margins into run / curtail / hold without flapping: the
// condition for a new advice must hold for MinDwell before the advice
// changes, and it is a condition on the margin's interval against a
// hysteresis band around zero:
//
//	curtail: margin upper bound < −h·cost
//	run:     margin lower bound > +h·cost
//	hold:    otherwise (the interval straddles the band: not sure)
//
// A forced_off window curtails at once. Not safe for concurrent use: the
// refresh loop owns it.
type Advisor struct {
	hysteresis float64
	reasons    [3]string // run, curtail, hold: built once, not per worker per refresh
	pending    [3]string // the same, while the new advice waits out min_dwell
	dwell      time.Duration
	states     map[string]*adviceState
	generation uint64
}

// NewAdvisor returns an advisor with hysteresis h (fraction of cost) and
// minimum dwell.
func NewAdvisor(h float64, dwell time.Duration) *Advisor {
	a := &Advisor{hysteresis: h, dwell: dwell, states: make(map[string]*adviceState), reasons: adviceReasons(h)}
	for i, r := range a.reasons {
		a.pending[i] = "waiting min_dwell (" + dwell.String() + ") before " + [3]string{AdviceRun, AdviceCurtail, AdviceHold}[i] + ": " + r
	}
	return a
}

// adviceReasons are the reasons of the three targets for hysteresis h; the
// figures themselves are in the worker's money.
func adviceReasons(h float64) [3]string {
	pct := fmt.Sprintf("%g%%", h*100)
	return [3]string{
		"margin lower bound above +" + pct + " of cost",
		"margin upper bound below -" + pct + " of cost",
		"margin interval within ±" + pct + " of cost: not decided",
	}
}

// target is the advice the figures call for now, with its reason.
func (a *Advisor) target(margin Interval, cost float64) (string, string) {
	band := a.hysteresis * cost
	switch {
	case margin.High < -band:
		return AdviceCurtail, a.reasons[1]
	case margin.Low > band:
		return AdviceRun, a.reasons[0]
	default:
		return AdviceHold, a.reasons[2]
	}
}

// Begin starts a refresh; keys not Observed until Sweep are forgotten.
func (a *Advisor) Begin() { a.generation++ }

// Observe feeds one key's figures at now and returns its advice and
// whether it changed (the first observation gives hold, not a change).
// forcedOff is a reason ("" when not in a forced_off window). known is
// false when there is no cost (no power price): the advice is hold.
func (a *Advisor) Observe(key string, now time.Time, margin Interval, cost float64, known bool, forcedOff string) (Advice, Advice, bool) {
	s := a.states[key]
	if s == nil {
		s = &adviceState{current: Advice{Advice: AdviceHold, Reason: "no figures yet", Since: now}}
		a.states[key] = s
	}
	s.seen = a.generation
	prev := s.current
	var want, reason string
	switch {
	case forcedOff != "":
		if s.current.Advice != AdviceCurtail || s.current.Reason != forcedOff {
			s.current = Advice{Advice: AdviceCurtail, Reason: forcedOff, Since: now}
			s.candidate = ""
		}
		return s.current, prev, s.current.Advice != prev.Advice
	case !known:
		want, reason = AdviceHold, "no power price: cost unknown"
	default:
		want, reason = a.target(margin, cost)
	}
	if want == s.current.Advice {
		s.candidate = ""
		s.current.Reason = reason
		return s.current, prev, false
	}
	if s.candidate != want {
		s.candidate, s.candidateSince = want, now
	}
	if now.Sub(s.candidateSince) >= a.dwell {
		s.current = Advice{Advice: want, Reason: reason, Since: s.candidateSince}
		s.candidate = ""
		return s.current, prev, true
	}
	for i, r := range a.reasons {
		if r == reason {
			s.current.Reason = a.pending[i]
		}
	}
	return s.current, prev, false
}

// Sweep forgets keys not observed since Begin (workers gone).
func (a *Advisor) Sweep() {
	for k, s := range a.states {
		if s.seen != a.generation {
			delete(a.states, k)
		}
	}
}
