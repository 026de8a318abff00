package economics

import "testing"

func TestClassify(t *testing.T) {
	c, err := NewClassifier(nil, []Override{
		{Worker: "bc1qrack*.s19-*", Model: "Antminer S19 XP"},
		{Worker: "*.immersion-?", JPerTH: 24.5},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, worker, ua string
		ths              float64
		model, source    string
		jPerTH           float64
	}{
		{"bitaxe gamma by chip", "a.b", "bitaxe/BM1370/v2.4.2", 1.1, "Bitaxe Gamma", SourceUserAgent, 15},
		{"bitaxe supra by chip", "a.b", "bitaxe/BM1368/v2.2.0", 0.6, "Bitaxe Supra", SourceUserAgent, 21.5},
		{"antminer s21 agent", "a.b", "Antminer S21/Thu Nov 23 2023", 200, "Antminer S21", SourceUserAgent, 17.5},
		{"longest name wins: S21 Pro", "a.b", "Antminer S21 Pro/v1", 0, "Antminer S21 Pro", SourceUserAgent, 15},
		{"longest name wins: S19j Pro", "a.b", "cgminer/4.12 Antminer S19j Pro", 0, "Antminer S19j Pro", SourceUserAgent, 30.5},
		{"whatsminer m30s++", "a.b", "whatsminer/M30S++_V40", 112, "Whatsminer M30S++", SourceUserAgent, 31},
		{"avalon a1466", "a.b", "cgminer/4.11.1 Avalon A1466", 150, "Avalon A1466", SourceUserAgent, 21.5},
		{"bmminer band 100 TH/s", "a.b", "bmminer/2.0.0", 100, "Antminer S19j Pro", SourceHashrateBand, 30.5},
		{"bmminer band 96 TH/s: S19", "a.b", "bmminer/2.0.0", 96, "Antminer S19", SourceHashrateBand, 34.5},
		{"bmminer band 112 TH/s: S19 Pro", "a.b", "bmminer/2.0.0", 112, "Antminer S19 Pro", SourceHashrateBand, 29.5},
		{"btminer band 180 TH/s: M60S", "a.b", "btminer/3.1", 180, "Whatsminer M60S", SourceHashrateBand, 18.5},
		{"bmminer far from every model", "a.b", "bmminer/2.0.0", 50, "unknown", SourceDefault, DefaultJPerTH},
		{"band needs a hashrate", "a.b", "bmminer/2.0.0", 0, "unknown", SourceDefault, DefaultJPerTH},
		{"unknown agent", "a.b", "cpuminer/2.5.1", 0.001, "unknown", SourceDefault, DefaultJPerTH},
		{"no agent", "a.b", "", 100, "unknown", SourceDefault, DefaultJPerTH},
		{"operator model beats the agent", "bc1qrack7.s19-12", "bitaxe/BM1370", 1, "Antminer S19 XP", SourceOperator, 21.5},
		{"operator efficiency", "bc1qxyz.immersion-3", "bmminer/2.0.0", 100, "operator: *.immersion-?", SourceOperator, 24.5},
		{"glob does not match", "bc1qxyz.immersion-13", "", 0, "unknown", SourceDefault, DefaultJPerTH},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := c.Classify(tc.worker, tc.ua, tc.ths)
			if d.Model != tc.model || d.Source != tc.source || d.JPerTH != tc.jPerTH {
				t.Fatalf("got %+v, want %s (%s, %v J/TH)", d, tc.model, tc.source, tc.jPerTH)
			}
		})
	}
}

func TestClassifierRejectsBadOverrides(t *testing.T) {
	if _, err := NewClassifier(nil, []Override{{Worker: "[", JPerTH: 1}}, 0); err == nil {
		t.Fatal("bad glob accepted")
	}
	if _, err := NewClassifier(nil, []Override{{Worker: "*", Model: "Antminer S99"}}, 0); err == nil {
		t.Fatal("unknown model accepted")
	}
}

func TestCatalogOverride(t *testing.T) {
	cfg := DevicesConfig{Catalog: []Model{
		{Name: "Antminer S19", JPerTH: 38, TypicalTHs: 90},                                               // replaces, keeps match
		{Name: "NerdQaxe++", Vendor: "bitaxe", JPerTH: 16, TypicalTHs: 4.8, Match: []string{"nerdqaxe"}}, // added
	}}
	c, err := NewClassifier(cfg.catalog(), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Classify("a", "Antminer S19/x", 0); d.JPerTH != 38 || d.Vendor != "bitmain" {
		t.Fatalf("replaced S19: %+v", d)
	}
	if d := c.Classify("a", "NerdQAxe++/BM1370/v1", 0); d.Model != "NerdQaxe++" {
		t.Fatalf("added model: %+v", d)
	}
	// Every built-in entry has the figures the docs promise.
	for _, m := range DefaultCatalog() {
		if m.JPerTH <= 0 || m.TypicalTHs <= 0 || m.Vendor == "" || len(m.Match) == 0 {
			t.Errorf("catalog entry %+v incomplete", m)
		}
	}
}
