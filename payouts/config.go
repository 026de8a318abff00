package payouts

import "github.com/lode-pool/lode/internal/settings"

// DefaultUnlockerConfig is lode.yaml's unlocker: section with nothing set
// (lode.example.yaml lists the same values).
func DefaultUnlockerConfig() UnlockerConfig {
	return UnlockerConfig{Maturity: DefaultMaturity, OrphanDepth: DefaultOrphanDepth, Interval: DefaultUnlockerInterval}
}

// ConfigError is a bad setting, named by its key in lode.yaml's unlocker:
// section.
type ConfigError = settings.Error

// ValidateSettings checks the unlocker's settings as lode.yaml gives them
// (every value set: a zero was written in the file), not the wired
// components, and returns every problem at once. How low maturity may go
// depends on the network: the daemon's config checks that.
func (c UnlockerConfig) ValidateSettings() error {
	problems := settings.Problems{Section: "unlocker"}
	bad := problems.Add
	if c.Maturity < 1 {
		bad("maturity", "must be >= 1, got %d", c.Maturity)
	}
	if c.OrphanDepth < 1 {
		bad("orphan_depth", "must be >= 1, got %d", c.OrphanDepth)
	}
	if c.Interval <= 0 {
		bad("interval", "must be a positive duration, got %v", c.Interval)
	}
	return problems.Err()
}
