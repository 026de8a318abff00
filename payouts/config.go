package payouts

import (
	"errors"
	"fmt"
)

// DefaultUnlockerConfig is lode.yaml's unlocker: section with nothing set
// (lode.example.yaml lists the same values).
func DefaultUnlockerConfig() UnlockerConfig {
	return UnlockerConfig{Maturity: DefaultMaturity, OrphanDepth: DefaultOrphanDepth, Interval: DefaultUnlockerInterval}
}

// ConfigError is a bad setting, named by its section and key in lode.yaml.
type ConfigError struct {
	Section string // e.g. "unlocker"
	Key     string // e.g. "maturity"
	Problem string
}

func (e *ConfigError) Error() string { return e.Section + "." + e.Key + ": " + e.Problem }

// ConfigKey and ConfigProblem let the config file's loader report the error
// under its full key path.
func (e *ConfigError) ConfigKey() string     { return e.Key }
func (e *ConfigError) ConfigProblem() string { return e.Problem }

// ValidateSettings checks the unlocker's settings as lode.yaml gives them
// (every value set: a zero was written in the file), not the wired
// components, and returns every problem at once. How low maturity may go
// depends on the network: the daemon's config checks that.
func (c UnlockerConfig) ValidateSettings() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Section: "unlocker", Key: key, Problem: fmt.Sprintf(format, args...)})
	}
	if c.Maturity < 1 {
		bad("maturity", "must be >= 1, got %d", c.Maturity)
	}
	if c.OrphanDepth < 1 {
		bad("orphan_depth", "must be >= 1, got %d", c.OrphanDepth)
	}
	if c.Interval <= 0 {
		bad("interval", "must be a positive duration, got %v", c.Interval)
	}
	return errors.Join(errs...)
}
