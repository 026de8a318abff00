package ledger

import (
	"time"

	"github.com/lode-pool/lode/internal/settings"
)

// The ledger: section of lode.yaml is Config: the daemon decodes the file
// into it (yaml keys on its fields) starting from DefaultConfig, and
// ValidateSettings checks it, every problem named by its key.
const (
	// SpoolFile is the spool's name in SpoolDir.
	SpoolFile = "shares.spool"
	// DefaultSpoolDir is ledger.spool_dir, relative to lode's working
	// folder.
	DefaultSpoolDir = "spool"
	// DefaultFileStatsInterval is lode.yaml's ledger.stats_interval:
	// statistics aggregated per worker in lode and written once a second,
	// so Redis works per active worker and second rather than per share; a
	// SIGKILL loses at most a second of statistics, never a share's
	// credit. (A Config built in code keeps statistics with every group
	// commit unless it sets StatsInterval.)
	DefaultFileStatsInterval = time.Second
)

// DefaultConfig is lode.yaml's ledger: section with nothing set
// (lode.example.yaml lists the same values).
func DefaultConfig() Config {
	return Config{MaxBatch: DefaultMaxBatch, MaxDelay: DefaultMaxDelay, SpoolDir: DefaultSpoolDir,
		StatsInterval: DefaultFileStatsInterval, MaxSpoolBytes: DefaultMaxSpoolBytes, WriteTimeout: DefaultWriteTimeout,
		RetryInterval: DefaultRetryInterval}
}

// ConfigError is a bad setting, named by its key in lode.yaml's ledger:
// section.
type ConfigError = settings.Error

// ValidateSettings checks the settings as they are (lode.yaml's section
// holds every value: a zero there was written in the file) and returns
// every problem at once, each a *ConfigError. Whether a spool folder is
// needed depends on the process's roles: the daemon's config checks that.
func (c Config) ValidateSettings() error {
	problems := settings.Problems{Section: "ledger"}
	bad := problems.Add
	if c.MaxBatch < 1 || c.MaxBatch > 65536 {
		bad("batch_size", "must be 1..65536, got %d", c.MaxBatch)
	}
	if c.MaxDelay < 0 || c.MaxDelay > time.Second {
		bad("batch_wait", "must be 0..1s, got %v", c.MaxDelay)
	}
	if c.StatsInterval < 0 || c.StatsInterval > time.Minute {
		bad("stats_interval", "must be 0..1m, got %v", c.StatsInterval)
	}
	if c.MaxSpoolBytes == 0 || c.MaxSpoolBytes < -1 {
		bad("max_spool_bytes", "must be a size in bytes, or -1 for no bound, got %d", c.MaxSpoolBytes)
	}
	if c.WriteTimeout <= 0 || c.WriteTimeout > time.Minute {
		bad("write_timeout", "must be above 0 and at most 1m, got %v", c.WriteTimeout)
	}
	if c.RetryInterval <= 0 || c.RetryInterval > time.Minute {
		bad("retry_interval", "must be above 0 and at most 1m, got %v", c.RetryInterval)
	}
	return problems.Err()
}
