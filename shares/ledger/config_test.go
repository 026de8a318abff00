package ledger

import (
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/testenv"
)

// lode.yaml's ledger: section is Config: DefaultConfig is valid, every bad
// key is named at once, and spool_dir places the spool.
func TestValidateSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		keys []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"statistics with every commit", func(c *Config) { c.StatsInterval = 0 }, nil},
		{"no spool bound", func(c *Config) { c.MaxSpoolBytes = -1 }, nil},
		{"batch", func(c *Config) { c.MaxBatch, c.MaxDelay = 0, 2*time.Second }, []string{"batch_size", "batch_wait"}},
		{"written as 0", func(c *Config) { c.WriteTimeout, c.RetryInterval, c.MaxSpoolBytes = 0, 0, 0 },
			[]string{"max_spool_bytes", "write_timeout", "retry_interval"}},
		{"stats interval", func(c *Config) { c.StatsInterval = 2 * time.Minute }, []string{"stats_interval"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.ValidateSettings()
			keys := testenv.ConfigKeys(t, err)
			if strings.Join(keys, " ") != strings.Join(tc.keys, " ") {
				t.Fatalf("keys %q, want %q (%v)", keys, tc.keys, err)
			}
		})
	}
	c := DefaultConfig()
	c.SpoolDir = "/var/lib/lode/spool"
	if err := c.setDefaults(); err != nil || c.SpoolPath != "/var/lib/lode/spool/"+SpoolFile {
		t.Fatalf("spool path %q, %v", c.SpoolPath, err)
	}
	c = Config{SpoolDir: "/d", SpoolPath: "/elsewhere/s"}
	if err := c.setDefaults(); err != nil || c.SpoolPath != "/elsewhere/s" {
		t.Fatalf("an explicit SpoolPath moved: %q, %v", c.SpoolPath, err)
	}
}
