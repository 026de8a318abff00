package economics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Handler serves the economics REST API for an engine:
//
//	GET /api/v1/economics             network, hashprice (both bases), retarget, prices with age
//	GET /api/v1/economics/workers     ?address= (all workers when absent)
//	GET /api/v1/economics/fleet       per model, break-even ladder, curtailable watts
//	GET /api/v1/economics/whatif      ?btc_price=&power_price=&difficulty_change=
//
// The api package mounts it with one line:
//
//	mux.Handle("/api/v1/economics", h); mux.Handle("/api/v1/economics/", h)
//
// Answers are JSON; 503 before the first refresh, 400 for bad parameters,
// 405 for methods other than GET and HEAD.
type Handler struct {
	engine *Engine
}

// NewHandler returns the handler of e.
func NewHandler(e *Engine) *Handler { return &Handler{engine: e} }

// Prefix is the path the handler serves under.
const Prefix = "/api/v1/economics"

// MaxWorkersPerAnswer bounds the workers route without an address.
const MaxWorkersPerAnswer = 10000

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	// Encode first: a figure that does not encode (an infinity from an
	// absurd what-if) must give an error, not half a body after a 200.
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{"economics: figures do not encode: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Overview is the body of GET /api/v1/economics.
type Overview struct {
	Time        time.Time `json:"time"`
	WorkersAsOf time.Time `json:"workers_as_of"`
	Network     Network   `json:"network"`
	Prices      Prices    `json:"prices"`
	// Totals over every worker.
	Workers      int     `json:"workers"`
	Hashrate     float64 `json:"hashrate"`
	CurtailableW float64 `json:"curtailable_watts"`
}

// WorkersAnswer is the body of GET /api/v1/economics/workers.
type WorkersAnswer struct {
	Time        time.Time `json:"time"`
	WorkersAsOf time.Time `json:"workers_as_of"`
	Address     string    `json:"address,omitempty"`
	// Total sums the listed workers (with an address: that address's).
	Total     Totals          `json:"total"`
	Workers   []WorkerFigures `json:"workers"`
	Truncated bool            `json:"truncated,omitempty"`
}

// Totals adds up workers: hashrate and money intervals are sums of the
// workers' bounds (conservative), advice is counted.
type Totals struct {
	Workers    int            `json:"workers"`
	Hashrate   Interval       `json:"hashrate"`
	Watts      float64        `json:"watts"`
	RevenueSat Interval       `json:"revenue_sat_per_day"`
	CostSat    *Interval      `json:"cost_sat_per_day,omitempty"`
	MarginSat  *Interval      `json:"margin_sat_per_day,omitempty"`
	Advice     map[string]int `json:"advice"`
}

// Total sums workers, their hashrate over window (5m, 1h or 24h: the one
// revenue uses).
func Total(ws []WorkerFigures, window time.Duration) Totals {
	wi := max(slices.Index(windows[:], window), 0)
	t := Totals{Workers: len(ws), Advice: map[string]int{}}
	add := func(dst **Interval, v *Interval) {
		if v == nil {
			return
		}
		if *dst == nil {
			*dst = &Interval{}
		}
		(*dst).Value += v.Value
		(*dst).Low += v.Low
		(*dst).High += v.High
	}
	for _, w := range ws {
		h := w.Hashrate[wi]
		t.Hashrate.Value += h.Hashrate
		t.Hashrate.Low += h.Low
		t.Hashrate.High += h.High
		t.Watts += w.Money.Watts.Value
		t.RevenueSat.Value += w.Money.RevenueSat.Value
		t.RevenueSat.Low += w.Money.RevenueSat.Low
		t.RevenueSat.High += w.Money.RevenueSat.High
		add(&t.CostSat, w.Money.CostSat)
		add(&t.MarginSat, w.Money.MarginSat)
		t.Advice[w.Advice.Advice]++
	}
	return t
}

// FleetAnswer is the body of GET /api/v1/economics/fleet.
type FleetAnswer struct {
	Time   time.Time `json:"time"`
	Prices Prices    `json:"prices"`
	Fleet
}

// WhatIfAnswer is the body of GET /api/v1/economics/whatif.
type WhatIfAnswer struct {
	Time    time.Time `json:"time"`
	Network Network   `json:"network"`
	Prices  Prices    `json:"prices"`
	Fleet   Fleet     `json:"fleet"`
	// Workers only when ?address= is given.
	Workers []WorkerFigures `json:"workers,omitempty"`
}

func overview(s *Snapshot) Overview {
	o := Overview{Time: s.Time, WorkersAsOf: s.WorkersAsOf, Network: s.Network, Prices: s.Prices, Workers: len(s.Workers), CurtailableW: s.Fleet.CurtailableW}
	for _, m := range s.Fleet.Models {
		o.Hashrate += m.Hashrate.Value
	}
	return o
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{"method not allowed"})
		return
	}
	route := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, Prefix), "/")
	s := h.engine.Snapshot()
	if s == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"economics: no figures yet"})
		return
	}
	q := r.URL.Query()
	switch route {
	case "":
		writeJSON(w, http.StatusOK, overview(s))
	case "/workers":
		addr := q.Get("address")
		ws := s.WorkersOf(addr)
		a := WorkersAnswer{Time: s.Time, WorkersAsOf: s.WorkersAsOf, Address: addr, Workers: ws, Total: Total(ws, h.engine.cfg.RevenueWindow)}
		if len(ws) > MaxWorkersPerAnswer {
			a.Workers, a.Truncated = ws[:MaxWorkersPerAnswer], true
		}
		if a.Workers == nil {
			a.Workers = []WorkerFigures{}
		}
		writeJSON(w, http.StatusOK, a)
	case "/fleet":
		writeJSON(w, http.StatusOK, FleetAnswer{Time: s.Time, Prices: s.Prices, Fleet: s.Fleet})
	case "/whatif":
		var wi WhatIf
		for _, p := range []struct {
			key string
			dst **float64
		}{{"btc_price", &wi.BTCPrice}, {"power_price", &wi.PowerPrice}, {"difficulty_change", &wi.DifficultyChange}} {
			raw := q.Get(p.key)
			if raw == "" {
				continue
			}
			v, err := strconv.ParseFloat(raw, 64)
			if err != nil || !finite(v) {
				writeJSON(w, http.StatusBadRequest, errorBody{fmt.Sprintf("%s: %q is not a number", p.key, raw)})
				return
			}
			*p.dst = &v
		}
		res, err := h.engine.WhatIf(wi)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody{err.Error()})
			return
		}
		a := WhatIfAnswer{Time: res.Time, Network: res.Network, Prices: res.Prices, Fleet: res.Fleet}
		if addr := q.Get("address"); addr != "" {
			a.Workers = res.WorkersOf(addr)
		}
		writeJSON(w, http.StatusOK, a)
	default:
		writeJSON(w, http.StatusNotFound, errorBody{"no such economics route"})
	}
}
