package economics

import (
	"fmt"
	"math"
	"path"
	"strings"
)

// Model is a SHA-256 mining machine with its nominal figures.
type Model struct {
	// Name is how the model is shown and referenced in overrides.
	Name string `yaml:"name" json:"name"`
	// Vendor groups models for the hashrate band: bitmain, microbt,
	// canaan, bitaxe, or an operator's own.
	Vendor string `yaml:"vendor" json:"vendor"`
	// TypicalTHs is the nominal hashrate (TH/s) at stock settings.
	TypicalTHs float64 `yaml:"typical_ths" json:"typical_ths"`
	// JPerTH is the nominal efficiency at the wall (J/TH = W per TH/s).
	JPerTH float64 `yaml:"j_per_th" json:"j_per_th"`
	// Match lists lower-case substrings of a mining.subscribe user agent
	// that identify this model (e.g. "s19j pro", "bm1370").
	Match []string `yaml:"match" json:"-"`
}

// DefaultCatalog is the built-in table of common SHA-256 machines, with
// nominal hashrate and efficiency at stock settings from the makers'
// published spec sheets (Bitmain, MicroBT, Canaan product pages; the Bitaxe
// open-hardware project's documentation). Real units vary by bin, firmware
// and temperature, hence the operator may override or extend every entry
// (Config.Devices.Catalog). Order matters within a vendor only in that a
// longer, more specific Match is tried before a shorter one.
//
// Sources checked (docs/economics.md, "Device model and efficiency"): the
// A1466's 150 TH/s at 3230 W (21.5 J/TH) is Canaan's nameplate as a
// reseller quotes it; the T21, M60S and M30S++ figures are unverified.
func DefaultCatalog() []Model {
	return []Model{
		{Name: "Antminer S21 XP", Vendor: "bitmain", TypicalTHs: 270, JPerTH: 13.5, Match: []string{"s21 xp", "s21xp"}},
		{Name: "Antminer S21 Pro", Vendor: "bitmain", TypicalTHs: 234, JPerTH: 15, Match: []string{"s21 pro", "s21pro"}},
		{Name: "Antminer S21", Vendor: "bitmain", TypicalTHs: 200, JPerTH: 17.5, Match: []string{"s21"}},
		{Name: "Antminer T21", Vendor: "bitmain", TypicalTHs: 190, JPerTH: 19, Match: []string{"t21"}},
		{Name: "Antminer S19 XP", Vendor: "bitmain", TypicalTHs: 140, JPerTH: 21.5, Match: []string{"s19 xp", "s19xp"}},
		{Name: "Antminer S19j Pro", Vendor: "bitmain", TypicalTHs: 100, JPerTH: 30.5, Match: []string{"s19j pro", "s19jpro"}},
		{Name: "Antminer S19 Pro", Vendor: "bitmain", TypicalTHs: 110, JPerTH: 29.5, Match: []string{"s19 pro", "s19pro"}},
		{Name: "Antminer S19", Vendor: "bitmain", TypicalTHs: 95, JPerTH: 34.5, Match: []string{"s19"}},
		{Name: "Whatsminer M60S", Vendor: "microbt", TypicalTHs: 186, JPerTH: 18.5, Match: []string{"m60s"}},
		{Name: "Whatsminer M50S", Vendor: "microbt", TypicalTHs: 126, JPerTH: 26, Match: []string{"m50s"}},
		{Name: "Whatsminer M30S++", Vendor: "microbt", TypicalTHs: 112, JPerTH: 31, Match: []string{"m30s++"}},
		{Name: "Avalon A1466", Vendor: "canaan", TypicalTHs: 150, JPerTH: 21.5, Match: []string{"a1466", "avalon 1466"}},
		{Name: "Bitaxe Gamma", Vendor: "bitaxe", TypicalTHs: 1.2, JPerTH: 15, Match: []string{"bm1370"}},
		{Name: "Bitaxe Supra", Vendor: "bitaxe", TypicalTHs: 0.7, JPerTH: 21.5, Match: []string{"bm1368"}},
		{Name: "Bitaxe Ultra", Vendor: "bitaxe", TypicalTHs: 0.5, JPerTH: 24, Match: []string{"bm1366"}},
	}
}

// vendorMarkers map lower-case user-agent substrings to a vendor, for the
// hashrate band when the agent names no model (stock firmware often sends
// only its miner software: bmminer/cgminer builds on Antminers, btminer on
// Whatsminers).
var vendorMarkers = []struct{ marker, vendor string }{
	{"antminer", "bitmain"}, {"bmminer", "bitmain"}, {"bosminer", "bitmain"}, {"braiins", "bitmain"},
	{"whatsminer", "microbt"}, {"btminer", "microbt"},
	{"avalon", "canaan"}, {"canaan", "canaan"},
	{"bitaxe", "bitaxe"}, {"esp-miner", "bitaxe"},
}

// Model sources, as reported with every device figure.
const (
	SourceOperator     = "operator"
	SourceUserAgent    = "user_agent"
	SourceHashrateBand = "hashrate_band"
	SourceDefault      = "default"
)

// DefaultJPerTH is the efficiency assumed for an unidentified machine: an
// S19-class figure, the most common installed generation.
const DefaultJPerTH = 30

// BandTolerance is how far (relative) a measured hashrate may sit from a
// model's typical TH/s to be taken as that model within its vendor.
const BandTolerance = 0.15

// Override assigns a model or an efficiency to workers whose full name
// ("address.worker") matches a glob (path.Match syntax: *, ?, [a-z]).
type Override struct {
	Worker string `yaml:"worker" json:"worker"`
	// Model names a catalog entry; or JPerTH (and optionally Name) gives
	// the efficiency directly.
	Model  string  `yaml:"model" json:"model,omitempty"`
	JPerTH float64 `yaml:"j_per_th" json:"j_per_th,omitempty"`
}

// Device is what the classifier concluded about one worker's machine.
type Device struct {
	Model  string  `json:"model"`
	Vendor string  `json:"vendor,omitempty"`
	JPerTH float64 `json:"j_per_th"`
	Source string  `json:"source"`
}

// Classifier maps a worker to a Device. It is immutable once built and
// safe for concurrent use.
type Classifier struct {
	catalog   []Model
	byName    map[string]int
	overrides []Override
	defJPerTH float64
}

// NewClassifier builds a classifier from a catalog (DefaultCatalog when
// nil), overrides and the default efficiency (DefaultJPerTH when 0).
func NewClassifier(catalog []Model, overrides []Override, defaultJPerTH float64) (*Classifier, error) {
	if catalog == nil {
		catalog = DefaultCatalog()
	}
	if defaultJPerTH == 0 {
		defaultJPerTH = DefaultJPerTH
	}
	c := &Classifier{catalog: catalog, byName: make(map[string]int, len(catalog)), overrides: overrides, defJPerTH: defaultJPerTH}
	for i, m := range catalog {
		c.byName[strings.ToLower(m.Name)] = i
	}
	for i, o := range overrides {
		if _, err := path.Match(o.Worker, ""); err != nil {
			return nil, fmt.Errorf("devices.overrides[%d].worker %q: %w", i, o.Worker, err)
		}
		if o.Model != "" {
			if _, ok := c.byName[strings.ToLower(o.Model)]; !ok {
				return nil, fmt.Errorf("devices.overrides[%d].model %q: not in the catalog", i, o.Model)
			}
		}
	}
	return c, nil
}

// Catalog returns the models the classifier knows.
func (c *Classifier) Catalog() []Model { return c.catalog }

// Classify returns the device of a worker: an operator override matching
// its name first (the operator knows the machine; custom firmware sends
// misleading agents), then a model named in its user agent, then the
// model of its vendor nearest to its measured hashrate (within
// BandTolerance), then the default efficiency. hashrateTHs ≤ 0 skips the
// band.
func (c *Classifier) Classify(worker, userAgent string, hashrateTHs float64) Device {
	return c.classify(worker, c.parseAgent(userAgent), hashrateTHs)
}

// agentInfo is what a user agent says: a catalog model (index, −1 none)
// or else a vendor ("" none).
type agentInfo struct {
	model  int
	vendor string
}

// parseAgent reads a user agent once; the engine memoises it per refresh.
func (c *Classifier) parseAgent(userAgent string) agentInfo {
	ai := agentInfo{model: -1}
	ua := strings.ToLower(userAgent)
	if ua == "" {
		return ai
	}
	bestLen := 0
	for i, m := range c.catalog {
		for _, s := range m.Match {
			if len(s) > bestLen && strings.Contains(ua, s) {
				ai.model, bestLen = i, len(s)
			}
		}
	}
	if ai.model >= 0 {
		return ai
	}
	for _, v := range vendorMarkers {
		if strings.Contains(ua, v.marker) {
			ai.vendor = v.vendor
			break
		}
	}
	return ai
}

func (c *Classifier) classify(worker string, ai agentInfo, hashrateTHs float64) Device {
	for _, o := range c.overrides {
		if ok, _ := path.Match(o.Worker, worker); !ok {
			continue
		}
		if o.Model != "" {
			m := c.catalog[c.byName[strings.ToLower(o.Model)]]
			return Device{Model: m.Name, Vendor: m.Vendor, JPerTH: m.JPerTH, Source: SourceOperator}
		}
		return Device{Model: "operator: " + o.Worker, JPerTH: o.JPerTH, Source: SourceOperator}
	}
	if ai.model >= 0 {
		m := c.catalog[ai.model]
		return Device{Model: m.Name, Vendor: m.Vendor, JPerTH: m.JPerTH, Source: SourceUserAgent}
	}
	if ai.vendor != "" && hashrateTHs > 0 {
		best, bestDist := -1, math.Inf(1)
		for i, m := range c.catalog {
			if m.Vendor != ai.vendor || m.TypicalTHs <= 0 {
				continue
			}
			dist := math.Abs(hashrateTHs/m.TypicalTHs - 1)
			if dist <= BandTolerance && dist < bestDist {
				best, bestDist = i, dist
			}
		}
		if best >= 0 {
			m := c.catalog[best]
			return Device{Model: m.Name, Vendor: m.Vendor, JPerTH: m.JPerTH, Source: SourceHashrateBand}
		}
	}
	return Device{Model: "unknown", JPerTH: c.defJPerTH, Source: SourceDefault}
}
