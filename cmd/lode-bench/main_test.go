package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"stratum+tcp://127.0.0.1:3333", "127.0.0.1:3333", true},
		{"tcp://pool.example:3333", "pool.example:3333", true},
		{"127.0.0.1:3333", "127.0.0.1:3333", true},
		{"http://127.0.0.1:3333", "", false},
		{"stratum+tcp://", "", false},
	} {
		got, err := parseURL(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseURL(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestParseLoadFlags(t *testing.T) {
	f, err := parseLoadFlags(strings.Fields("-url stratum+tcp://127.0.0.1:3333 -user addr.w1 -conns 5 -version-rolling -src 127.0.0.2,127.0.0.3"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Address != "127.0.0.1:3333" || f.cfg.Conns != 5 || !f.cfg.VersionRolling || len(f.cfg.SourceIPs) != 2 {
		t.Errorf("parsed %+v", f.cfg)
	}
	if !f.cfg.Reconnect || f.duration != 0 {
		t.Error("without -duration the run must be open-ended and redial")
	}
	f, err = parseLoadFlags(strings.Fields("-user a -duration 60s"), io.Discard)
	if err != nil || f.cfg.Reconnect || f.duration != time.Minute {
		t.Errorf("with -duration: %+v %v", f, err)
	}
	for _, bad := range []string{"", "-user a -conns 0", "-user a -blocks 3", "-user a extra", "-user a -url ftp://x:1", "-nosuchflag"} {
		if _, err := parseLoadFlags(strings.Fields(bad), io.Discard); err == nil {
			t.Errorf("flags %q accepted", bad)
		}
	}
	if _, err := parseLoadFlags(strings.Fields("-raw -url 127.0.0.1:1"), io.Discard); err != nil {
		t.Errorf("-raw needs no user: %v", err)
	}
}
