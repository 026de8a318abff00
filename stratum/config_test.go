package stratum

import (
	"strings"
	"testing"
	"time"

	"github.com/lode-pool/lode/internal/testenv"
)

// lode.yaml's stratum: section is this package's Config: DefaultConfig is
// valid as the file's settings, and ValidateSettings names each bad key,
// all at once.
func TestValidateSettings(t *testing.T) {
	if err := DefaultConfig().ValidateSettings(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	off := false
	tests := []struct {
		name string
		mut  func(*Config)
		keys []string // every key named, "" none
	}{
		{"defaults", func(*Config) {}, nil},
		{"listen out of range", func(c *Config) { c.Ports[0].Address = "0.0.0.0:99999" }, []string{"ports[0].listen"}},
		{"difficulty range", func(c *Config) { c.Ports[0].MinDifficulty, c.Ports[0].StartDifficulty = 0, 1<<41 },
			[]string{"ports[0].min_difficulty", "ports[0].start_difficulty"}},
		{"tls half", func(c *Config) { c.Ports[0].TLSCertFile = "/c" }, []string{"ports[0]"}},
		{"mask", func(c *Config) { c.VersionMaskHex = "ffffffff" }, []string{"version_mask"}},
		{"timeouts and sizes written as 0", func(c *Config) {
			c.IdleTimeout, c.Vardiff.TargetInterval, c.MaxConnections, c.Extranonce2Size = 0, 0, 0, 12
		}, []string{"extranonce2_size", "idle_timeout", "share_interval", "max_connections"}},
		{"no per-IP limit", func(c *Config) { c.MaxConnectionsPerIP = 0 }, nil},
		{"ban ratio", func(c *Config) { c.Ban.RejectRatio = 1.5 }, []string{"ban.reject_ratio"}},
		{"ban off skips its checks", func(c *Config) { c.Ban.Enabled, c.Ban.Disabled, c.Ban.RejectRatio = &off, true, 1.5 }, nil},
		{"no ports: not the settings' concern", func(c *Config) { c.Ports = nil }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mut(&c)
			err := c.ValidateSettings()
			if len(tc.keys) == 0 {
				if err != nil {
					t.Fatalf("unexpected: %v", err)
				}
				return
			}
			keys := testenv.ConfigKeys(t, err)
			if strings.Join(keys, " ") != strings.Join(tc.keys, " ") {
				t.Fatalf("keys %q, want %q (%v)", keys, tc.keys, err)
			}
		})
	}
}

// The file's spellings reach the server's settings: version_mask in hex,
// ban.enabled over Disabled; a Config built in code keeps its zero-value
// defaults.
func TestFileSpellings(t *testing.T) {
	off := false
	c := DefaultConfig()
	c.VersionMaskHex, c.Ban.Enabled = "00ffe000", &off
	d := c.withDefaults()
	if d.VersionMask != 0x00ffe000 || !d.Ban.Disabled {
		t.Fatalf("mask %08x, ban disabled %v", d.VersionMask, d.Ban.Disabled)
	}
	code := Config{}.withDefaults()
	if code.VersionMask != DefaultVersionMask || code.Ban.Disabled || code.MaxConnectionsPerIP != 0 || code.Ban.Window != 5*time.Minute {
		t.Fatalf("code defaults %+v", code)
	}
	if f := DefaultConfig(); f.Ban.Disabled || f.MaxConnectionsPerIP != DefaultMaxPerIP || f.Vardiff.RetargetTime != DefaultRetargetInterval {
		t.Fatalf("file defaults %+v", f)
	}
}
