package stratum

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/lode-pool/lode/bench/miner"
	"github.com/lode-pool/lode/shares"
	"github.com/lode-pool/lode/stratum/message"
)

// firstDifficulty subscribes and authorizes with pass and returns the params
// of the first set_difficulty (the read fails the test on a line that is not
// JSON, such as set_difficulty [NaN]).
func firstDifficulty(t *testing.T, c *client, user, pass string) string {
	t.Helper()
	c.call("1", message.MethodSubscribe, `[]`)
	if r := c.call("2", message.MethodAuthorize, `["`+user+`","`+pass+`"]`); string(r.Result) != "true" {
		t.Fatalf("authorize: %s %s", r.Result, r.Error)
	}
	return string(c.notification(message.MethodSetDifficulty).Params)
}

// Every number a miner sends (issue 10 item 2) must be finite and positive;
// anything else is refused and leaves the difficulty where it was, so the
// session never sends set_difficulty [NaN] and vardiff keeps working.
func TestMinerNumbersMustBeFinite(t *testing.T) {
	h := startServer(t, func(c *Config) { c.Ports[0].MaxDifficulty = 1000 })
	start := "[0.00001]"
	t.Run("minimum-difficulty", func(t *testing.T) {
		for i, v := range []string{`"NaN"`, `"nan"`, `"Inf"`, `"+Inf"`, `"-Inf"`, `"Infinity"`, `"1e400"`, `-1`, `"-0.5"`, `["NaN"]`, `"0x1p2000"`} {
			t.Run(v, func(t *testing.T) {
				c := dial(t, h.addr)
				r := c.call(fmt.Sprint(10+i), message.MethodConfigure, `[["minimum-difficulty"],{"minimum-difficulty.value":`+v+`}]`)
				var got map[string]bool
				if err := json.Unmarshal(r.Result, &got); err != nil || got["minimum-difficulty"] {
					t.Fatalf("configure %s answered %s, want minimum-difficulty false", v, r.Result)
				}
				if d := firstDifficulty(t, c, testAddress(t, 5), "x"); d != start {
					t.Fatalf("set_difficulty %s after minimum-difficulty %s, want %s", d, v, start)
				}
			})
		}
	})
	t.Run("suggest_difficulty", func(t *testing.T) {
		for i, v := range []string{`"NaN"`, `"Inf"`, `"Infinity"`, `"-Inf"`, `["NaN"]`, `0`, `-2`, `"1e999"`} {
			t.Run(v, func(t *testing.T) {
				c := dial(t, h.addr)
				if r := c.call(fmt.Sprint(10+i), message.MethodSuggestDifficulty, `[`+v+`]`); r.code() != message.CodeOther {
					t.Fatalf("suggest_difficulty %s: %s %s, want error 20", v, r.Result, r.Error)
				}
				if d := firstDifficulty(t, c, testAddress(t, 5), "x"); d != start {
					t.Fatalf("set_difficulty %s after suggest %s, want %s", d, v, start)
				}
			})
		}
	})
	t.Run("suggest_target", func(t *testing.T) {
		for i, v := range []string{`"0"`, `"-ff"`, `"+ff"`, `"0x10"`, `"` + strings.Repeat("f", 65) + `"`, `"1` + strings.Repeat("0", 64) + `"`, `"zz"`, `""`} {
			t.Run(v, func(t *testing.T) {
				c := dial(t, h.addr)
				if r := c.call(fmt.Sprint(10+i), message.MethodSuggestTarget, `[`+v+`]`); r.code() != message.CodeOther {
					t.Fatalf("suggest_target %s: %s %s, want error 20", v, r.Result, r.Error)
				}
				if d := firstDifficulty(t, c, testAddress(t, 5), "x"); d != start {
					t.Fatalf("set_difficulty %s after suggest_target %s, want %s", d, v, start)
				}
			})
		}
		// A valid 256-bit target still works (difficulty 1 is 0x00000000ffff0000…).
		c := dial(t, h.addr)
		if r := c.call("9", message.MethodSuggestTarget, `["00000000ffff0000000000000000000000000000000000000000000000000000"]`); r.code() != 0 {
			t.Fatalf("valid suggest_target: %s", r.Error)
		}
		if d := firstDifficulty(t, c, testAddress(t, 5), "x"); d != "[1]" {
			t.Fatalf("set_difficulty %s after a difficulty-1 target, want [1]", d)
		}
	})
	t.Run("password", func(t *testing.T) {
		for _, v := range []string{"d=NaN", "d=Inf", "d=+Inf", "d=1e400", "d=-1", "d=0", "d=0x1p-2000"} {
			t.Run(v, func(t *testing.T) {
				c := dial(t, h.addr)
				if d := firstDifficulty(t, c, testAddress(t, 5), "x,"+v); d != start {
					t.Fatalf("set_difficulty %s after password %s, want %s", d, v, start)
				}
			})
		}
	})
}

// version-rolling.min-bit-count is a bit count: a whole number 0..32.
// Anything else (1e300, NaN, 2^63, which int() turned into garbage) is not
// a request the pool can honour: version-rolling is refused.
func TestMinBitCountOutOfRange(t *testing.T) {
	h := startServer(t, func(c *Config) { c.VersionMask = 0x1fffe000 })
	for i, v := range []string{`1e300`, `"NaN"`, `"Inf"`, `9223372036854775808`, `18446744073709551616`, `-1`, `2.5`, `33`, `"1e300"`} {
		t.Run(v, func(t *testing.T) {
			c := dial(t, h.addr)
			r := c.call(fmt.Sprint(i+1), message.MethodConfigure, `[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":`+v+`}]`)
			var got map[string]any
			if err := json.Unmarshal(r.Result, &got); err != nil {
				t.Fatalf("result %s: %v", r.Result, err)
			}
			if got["version-rolling"] != false {
				t.Fatalf("min-bit-count %s answered %s, want version-rolling false", v, r.Result)
			}
		})
	}
	c := dial(t, h.addr)
	r := c.call("50", message.MethodConfigure, `[["version-rolling"],{"version-rolling.mask":"ffffffff","version-rolling.min-bit-count":16}]`)
	if !strings.Contains(string(r.Result), `"version-rolling":true`) {
		t.Fatalf("min-bit-count 16: %s", r.Result)
	}
}

// Worker names (issue 10 item 6) are printable ASCII without separators;
// anything else is refused at authorize with a message saying why.
func TestAuthorizeWorkerNames(t *testing.T) {
	h := startServer(t, nil)
	addr := testAddress(t, 9)
	c := dial(t, h.addr)
	c.call("1", message.MethodSubscribe, `[]`)
	bad := []string{
		addr + `.rig\u001b[31mred`,           // ESC: terminal escape sequences
		addr + `.rig\u001b]0;title\u0007`,    // OSC title + BEL
		addr + `.a\nb`,                       // newline breaks tables
		addr + `.a\rb`,                       // carriage return
		addr + `.a|b`,                        // the separator of Redis entries
		addr + `.a b`,                        // space
		addr + `.a\tb`,                       // tab
		addr + `.\u00e9t\u00e9`,              // non-ASCII
		addr + `.a\u007fb`,                   // DEL
		addr + `.`,                           // empty worker name after the dot
		addr + `.` + strings.Repeat("w", 65), // too long
	}
	for i, user := range bad {
		r := c.call(fmt.Sprint(10+i), message.MethodAuthorize, `["`+user+`","x"]`)
		if r.code() != message.CodeUnauthorized || !strings.Contains(string(r.Error), "worker name") {
			t.Errorf("authorize %q: %s %s, want error 24 about the worker name", user, r.Result, r.Error)
		}
	}
	for i, name := range []string{"rig1", "rig.7", "S19_XP-01", "a~b+c@d", strings.Repeat("w", 64)} {
		r := c.call(fmt.Sprint(50+i), message.MethodAuthorize, `["`+addr+"."+name+`","x"]`)
		if string(r.Result) != "true" {
			t.Errorf("authorize %q: %s %s", name, r.Result, r.Error)
		}
	}
}

// Addresses are canonical (issue 10 item 7): an uppercase bech32 address is
// the same address as its lowercase form, and its shares are recorded under
// the spelling btcutil encodes (lowercase), worker name included, while the
// miner keeps submitting under the spelling it authorized with.
func TestAuthorizeCanonicalAddress(t *testing.T) {
	h := startServer(t, nil)
	var prog [20]byte
	prog[0] = 0x42
	a, err := btcutil.NewAddressWitnessPubKeyHash(prog[:], &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	lower := a.EncodeAddress()
	upper := strings.ToUpper(lower)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, user := range []string{upper + ".Rig", upper} {
		m, err := miner.Dial(ctx, miner.Config{Address: h.addr, Username: user, Password: "x"})
		if err != nil {
			t.Fatal(err)
		}
		st, err := m.Run(ctx, 1)
		m.Close()
		if err != nil || st.Accepted != 1 {
			t.Fatalf("%s: accepted %d (%v) %v", user, st.Accepted, st.ByCode, err)
		}
	}
	got := h.rec.Shares()
	if len(got) != 2 {
		t.Fatalf("recorded %d shares", len(got))
	}
	want := []string{lower + ".Rig", lower}
	for i, sh := range got {
		if sh.Worker != want[i] || sh.Address != lower {
			t.Errorf("share %d recorded as worker %q address %q, want %q and %q", i, sh.Worker, sh.Address, want[i], lower)
		}
	}
}

// The operator's numbers get the same rule as the miners': NaN fails the
// checks (every comparison with it is false) and a port's maximum is finite.
func TestConfigValidateNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for name, mut := range map[string]func(*Config){
		"start NaN":        func(c *Config) { c.Ports[0].StartDifficulty = nan },
		"max NaN":          func(c *Config) { c.Ports[0].MaxDifficulty = nan },
		"max +Inf":         func(c *Config) { c.Ports[0].MaxDifficulty = inf },
		"min NaN":          func(c *Config) { c.Ports[0].MinDifficulty = nan },
		"vardiff step NaN": func(c *Config) { c.Vardiff.MaxStep = nan },
		"ban ratio NaN":    func(c *Config) { c.Ban.RejectRatio = nan },
		"ban ratio 2":      func(c *Config) { c.Ban.RejectRatio = 2 },
	} {
		c := Config{Ports: []Port{{Address: ":0"}}, Jobs: &testJobs{}, Validator: &shares.Validator{}, Recorder: &MemoryRecorder{}}
		mut(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// An admin ban names the worker as the API lists it (canonical address);
// the same worker authorizing with the address in uppercase is refused too.
func TestAdminBanCoversOtherAddressSpellings(t *testing.T) {
	h := startServer(t, nil)
	var prog [20]byte
	prog[0] = 0x43
	a, err := btcutil.NewAddressWitnessPubKeyHash(prog[:], &chaincfg.TestNet3Params)
	if err != nil {
		t.Fatal(err)
	}
	lower := a.EncodeAddress()
	if err := h.srv.Ban(context.Background(), lower+".rig", time.Minute); err != nil {
		t.Fatal(err)
	}
	c := dial(t, h.addr)
	c.call("1", message.MethodSubscribe, `[]`)
	if r := c.call("2", message.MethodAuthorize, `["`+strings.ToUpper(lower)+`.rig","x"]`); r.code() != message.CodeUnauthorized {
		t.Fatalf("banned worker in uppercase: %s %s, want error 24", r.Result, r.Error)
	}
}
