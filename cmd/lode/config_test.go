package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// A regtest P2PKH address (the testenv key) and a mainnet one.
const (
	regtestAddr = "muEg6aDf6mWpRr8WGwFr6YzpX52QdjtKyP"
	mainnetAddr = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
)

// minimal is the smallest valid mainnet file: what Defaults cannot supply.
const minimal = `
node:
  rpc_user: lode
  rpc_password: {env: LODE_TEST_RPC_PASSWORD}
pool:
  payout_address: ` + mainnetAddr + `
`

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c Config)
		// errs are substrings that must all appear in the error; none means
		// the file is valid.
		errs []string
	}{
		{name: "minimal gets defaults", yaml: minimal, check: func(t *testing.T, c Config) {
			if !reflect.DeepEqual(c.Roles, allRoles) || c.API.Listen != "127.0.0.1:8080" || c.Ledger.MaxBatch != 256 {
				t.Errorf("defaults not applied: roles %v api %s batch %d", c.Roles, c.API.Listen, c.Ledger.MaxBatch)
			}
		}},
		{name: "api only needs no node or payout address", yaml: "roles: [api]\n", check: func(t *testing.T, c Config) {
			if c.Has(RoleStratum) || !c.Has(RoleAPI) {
				t.Errorf("roles %v", c.Roles)
			}
		}},
		{name: "cookie auth", yaml: `
roles: [stratum]
node: {rpc_cookie_file: /var/lib/bitcoind/.cookie, zmq_hashblock: "tcp://127.0.0.1:28332"}
pool: {payout_address: ` + mainnetAddr + `}
`, check: func(t *testing.T, c Config) {
			if c.Node.RPCCookieFile == "" || c.Node.ZMQHashBlock == "" {
				t.Errorf("node %+v", c.Node)
			}
		}},
		{name: "fractional difficulty and durations", yaml: minimal + `
stratum:
  ports:
    - {listen: "127.0.0.1:3334", start_difficulty: 0.001, min_difficulty: 0.00000001, max_difficulty: 1}
  share_interval: 2500ms
`, check: func(t *testing.T, c Config) {
			p := c.Stratum.Ports
			if len(p) != 1 || p[0].StartDifficulty != 0.001 || p[0].MinDifficulty != 1e-8 || c.Stratum.Vardiff.TargetInterval != 2500*time.Millisecond {
				t.Errorf("stratum %+v", c.Stratum)
			}
		}},
		{name: "regtest address on regtest", yaml: "network: regtest\nroles: [stratum]\nnode: {rpc_user: u, rpc_password: {file: /x}}\npool: {payout_address: " + regtestAddr + ", pplns_min_window: 1}\n"},
		{name: "empty file fails on required keys", yaml: "", errs: []string{"pool.payout_address: required", "node: set rpc_cookie_file"}},
		// fails
		{name: "unknown key", yaml: minimal + "stratum: {listen: x}\n", errs: []string{"stratum.listen: unknown key"}},
		{name: "unknown top-level key", yaml: minimal + "poool: {}\n", errs: []string{"poool: unknown key (did you mean `pool`?)"}},
		{name: "unknown role", yaml: "roles: [api, miner]\n", errs: []string{`roles[1]: unknown role "miner"`}},
		{name: "maturity below coinbase maturity on mainnet", yaml: minimal + "unlocker: {maturity: 10}\n",
			errs: []string{"unlocker.maturity: must be >= 100 (coinbase maturity) outside regtest, got 10"}},
		{name: "duplicate role", yaml: "roles: [api, api]\n", errs: []string{`roles[1]: role "api" listed twice`}},
		{name: "no roles", yaml: "roles: []\n", errs: []string{"roles: at least one"}},
		{name: "bad network", yaml: minimal + "network: testnet9\n", errs: []string{`network: unknown network "testnet9"`}},
		{name: "address for another network", yaml: minimal + "network: regtest\n", errs: []string{"pool.payout_address:"}},
		{name: "garbage address", yaml: strings.Replace(minimal, mainnetAddr, "1NotAnAddress", 1), errs: []string{"pool.payout_address: not a mainnet address"}},
		{name: "cookie and password", yaml: "roles: [stratum]\npool: {payout_address: " + mainnetAddr + "}\nnode: {rpc_cookie_file: /c, rpc_user: u, rpc_password: {env: X}}\n", errs: []string{"node.rpc_cookie_file: use either"}},
		{name: "secret env and file", yaml: minimal + "redis: {password: {env: A, file: /b}}\n", errs: []string{"redis.password: set env or file, not both"}},
		{name: "bad log level", yaml: minimal + "log: {level: loud}\n", errs: []string{`log.level: unknown level "loud"`}},
		{name: "bad listen", yaml: minimal + "api: {listen: 8080}\n", errs: []string{`api.listen: want host:port, got "8080"`}},
		{name: "bad durations", yaml: "roles: [api]\nnode: {poll_interval: 0s}\nshutdown_timeout: -1s\n", errs: []string{"node.poll_interval: must be a positive duration", "shutdown_timeout: must be a positive"}},
		{name: "unparsable duration", yaml: minimal + "shutdown_timeout: soon\n", errs: []string{"shutdown_timeout: want a duration such as 500ms"}},
		{name: "gc percent out of range", yaml: minimal + "runtime: {gc_percent: 0, memory_limit_bytes: 1000, max_procs: -1}\n", errs: []string{"runtime.gc_percent: must be 10..1000", "runtime.memory_limit_bytes: must be 0 (no limit) or at least 64 MiB", "runtime.max_procs: must be 0"}},
		{name: "difficulty range", yaml: minimal + `
stratum:
  ports:
    - {listen: ":3333", start_difficulty: 5, min_difficulty: 10, max_difficulty: 1}
    - {listen: ":3334", start_difficulty: 1, min_difficulty: 0, max_difficulty: 1}
`, errs: []string{"stratum.ports[0].max_difficulty: must be >= min_difficulty", "stratum.ports[0].start_difficulty", "stratum.ports[1].min_difficulty: must be > 0"}},
		{name: "tls half set", yaml: minimal + "stratum: {ports: [{listen: ':3333', start_difficulty: 1, min_difficulty: 1, max_difficulty: 1, tls_cert: /c}]}\n", errs: []string{"stratum.ports[0]: tls_cert and tls_key go together"}},
		{name: "stratum without ports", yaml: minimal + "stratum: {ports: []}\n", errs: []string{"stratum.ports: at least one port"}},
		{name: "version mask outside BIP320", yaml: minimal + "stratum: {version_mask: ffffffff}\n", errs: []string{"stratum.version_mask: ffffffff has bits outside"}},
		{name: "version mask not hex", yaml: minimal + "stratum: {version_mask: zz}\n", errs: []string{"stratum.version_mask: want hex"}},
		{name: "extranonce2 too big", yaml: minimal + "stratum: {extranonce2_size: 12}\n", errs: []string{"stratum.extranonce2_size: must be 1..8"}},
		{name: "ban ratio", yaml: minimal + "stratum: {ban: {enabled: true, reject_ratio: 1.5}}\n", errs: []string{"stratum.ban.reject_ratio"}},
		{name: "fee", yaml: "roles: [api]\npool: {fee_percent: 100}\n", errs: []string{"pool.fee_percent: must be in [0, 100)"}},
		{name: "instance id", yaml: "roles: [api]\npool: {instance_id: 256}\n", errs: []string{"pool.instance_id: must be 0..255"}},
		{name: "redis db and prefix", yaml: minimal + "redis: {db: 16, prefix: 'a{b}'}\n", errs: []string{"redis.db: must be 0..15", "redis.prefix:"}},
		{name: "hot signing needs key", yaml: minimal + "payouts: {signing: hot}\n", errs: []string{"payouts.key: hot signing needs the key"}},
		{name: "signing mode", yaml: minimal + "payouts: {signing: warm}\n", errs: []string{`payouts.signing: must be hot or cold, got "warm"`}},
		{name: "fee rates", yaml: minimal + "payouts: {fee_rate_floor: 10, fee_rate_cap: 5}\n", errs: []string{"payouts.fee_rate_cap: must be >= fee_rate_floor"}},
		{name: "fee payer", yaml: minimal + "payouts: {fee_payer: nobody}\n", errs: []string{"payouts.fee_payer"}},
		{name: "lease ttl", yaml: minimal + "redis: {lease_ttl: 500ms}\n", errs: []string{"redis.lease_ttl: must be at least 1s"}},
		{name: "batch", yaml: minimal + "ledger: {batch_size: 0, batch_wait: 2s}\n", errs: []string{"ledger.batch_size", "ledger.batch_wait"}},
		{name: "unset env placeholder", yaml: minimal + "api: {listen: '${LODE_TEST_SURELY_UNSET}'}\n", errs: []string{"unset environment variables: LODE_TEST_SURELY_UNSET"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConfig(strings.NewReader(tc.yaml))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.errs)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}

func TestEnvPlaceholders(t *testing.T) {
	t.Setenv("LODE_TEST_API", "127.0.0.1:9999")
	c, err := ParseConfig(strings.NewReader(minimal + "# ${NOT_EXPANDED} in a comment\napi: {listen: '${LODE_TEST_API}'} # ${NOR_HERE}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.API.Listen != "127.0.0.1:9999" {
		t.Fatalf("api.listen = %q", c.API.Listen)
	}
}

// TestExampleConfigIsDefaults keeps lode.example.yaml honest: it lists every
// key, and with the required values filled in it decodes to Defaults().
func TestExampleConfigIsDefaults(t *testing.T) {
	data, err := os.ReadFile("../../lode.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), `payout_address: ""`, `payout_address: "`+mainnetAddr+`"`, 1)
	text = strings.Replace(text, `rpc_user: ""`, `rpc_user: "lode"`, 1)
	text = strings.Replace(text, `rpc_password: {env: "", file: ""}`, `rpc_password: {env: "LODE_RPC_PASSWORD", file: ""}`, 1)
	got, err := ParseConfig(strings.NewReader(text))
	if err != nil {
		t.Fatalf("example config: %v", err)
	}
	want := Defaults()
	want.Pool.PayoutAddress = mainnetAddr
	want.Node.RPCUser = "lode"
	want.Node.RPCPassword.Env = "LODE_RPC_PASSWORD"
	// Compared as YAML: an empty list in the file ([]) and a nil default
	// are the same setting.
	gotY, err1 := yaml.Marshal(got)
	wantY, err2 := yaml.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if string(gotY) != string(wantY) {
		t.Errorf("lode.example.yaml differs from Defaults():\n got %s\nwant %s", gotY, wantY)
	}
	// Every yaml key of Config appears in the example.
	for _, key := range yamlKeys(reflect.TypeOf(Config{})) {
		if !strings.Contains(string(data), key+":") {
			t.Errorf("lode.example.yaml does not mention %q", key)
		}
	}
}

func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" && opts == "inline" {
			keys = append(keys, yamlKeys(f.Type)...) // written flat (stratum's vardiff keys)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		ft := f.Type
		if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft != reflect.TypeOf(time.Duration(0)) {
			keys = append(keys, yamlKeys(ft)...)
		}
	}
	return keys
}

func TestRegtestAndDeployConfigsParse(t *testing.T) {
	for _, v := range []string{"LODE_NODE_ADDR", "LODE_REDIS_ADDR", "LODE_STRATUM", "LODE_API"} {
		t.Setenv(v, "127.0.0.1:1")
	}
	t.Setenv("LODE_PAYOUT_ADDRESS", regtestAddr)
	t.Setenv("LODE_RUN_DIR", t.TempDir())
	for _, path := range []string{"../../lode.regtest.yaml", "../../deploy/lode.mainnet.yaml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			if _, err := LoadConfig(path); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestResolveSecrets(t *testing.T) {
	dir := t.TempDir()
	cookie := filepath.Join(dir, ".cookie")
	if err := os.WriteFile(cookie, []byte("__cookie__:s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LODE_TEST_REDIS_PW", "redispw")
	c := Defaults()
	c.Node.RPCCookieFile = cookie
	c.Redis.Password = Secret{Env: "LODE_TEST_REDIS_PW"}
	c.API.AdminToken = Secret{File: tokenFile}
	s, err := c.ResolveSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if s.NodeUser != "__cookie__" || s.NodePassword != "s3cret" || s.RedisPassword != "redispw" || s.AdminToken != "tok" {
		t.Errorf("secrets %+v", s)
	}

	c.Payouts.Signing = "hot"
	c.Payouts.Key = Secret{Env: "LODE_TEST_UNSET_KEY"}
	c.API.AdminToken = Secret{File: filepath.Join(dir, "missing")}
	_, err = c.ResolveSecrets()
	for _, want := range []string{"payouts.key: environment variable LODE_TEST_UNSET_KEY is not set", "api.admin_token: read secret file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not contain %q", err, want)
		}
	}
}

func TestCheckConfigFlag(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	noSecret := filepath.Join(dir, "nosecret.yaml")
	many := filepath.Join(dir, "many.yaml")
	syntax := filepath.Join(dir, "syntax.yaml")
	t.Setenv("LODE_TEST_RPC_PASSWORD", "pw")
	for path, text := range map[string]string{
		good:     minimal,
		bad:      minimal + "api: {listen: nowhere}\n",
		noSecret: strings.Replace(minimal, "LODE_TEST_RPC_PASSWORD", "LODE_TEST_RPC_PASSWORD_UNSET", 1),
		syntax:   "pool: {payout_address: [\n",
		// A typo, a port out of range and an unset secret: one run reports all.
		many: strings.Replace(minimal, "LODE_TEST_RPC_PASSWORD", "LODE_TEST_RPC_PASSWORD_UNSET", 1) +
			"  fee_precent: 2\napi: {listen: '0.0.0.0:99999'}\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"valid", []string{"-config", good, "-check-config"}, 0, "OK (network mainnet, roles stratum, api, unlocker, payouts)"},
		{"invalid key", []string{"-config", bad, "-check-config"}, 1, `api.listen: want host:port, got "nowhere"`},
		{"missing secret", []string{"-config", noSecret, "-check-config"}, 1, "node.rpc_password: environment variable LODE_TEST_RPC_PASSWORD_UNSET is not set"},
		{"all problems at once", []string{"-config", many, "-check-config"}, 1, "pool.fee_precent: unknown key (did you mean `fee_percent`?)\n" +
			`  api.listen: port must be a number from 0 to 65535, got "99999"` + "\n" +
			"  node.rpc_password: environment variable LODE_TEST_RPC_PASSWORD_UNSET is not set"},
		{"syntax error alone", []string{"-config", syntax, "-check-config"}, 1, "parse config: line"},
		{"missing file", []string{"-config", filepath.Join(dir, "none.yaml"), "-check-config"}, 1, "no such file"},
		{"stray argument", []string{"-config", good, "extra"}, 2, "unexpected arguments: extra"},
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(t.Context(), tc.args, nil, &out, &errOut)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errOut.String())
			}
			if got := out.String() + errOut.String(); !strings.Contains(got, tc.want) {
				t.Errorf("output %q lacks %q", got, tc.want)
			}
			if tc.name == "syntax error alone" && strings.Count(errOut.String(), "\n  ") != 1 {
				t.Errorf("a syntax error should come alone, not with the checks of the defaults: %q", errOut.String())
			}
		})
	}
}

// FuzzParseConfig: any file gives a Config or an error, never a panic, and
// a Config it accepts validates.
func FuzzParseConfig(f *testing.F) {
	f.Add(minimal)
	f.Add("roles: [api]\n")
	f.Add("stratum: {ports: [{listen: ':1', start_difficulty: 1e-8, min_difficulty: 1e-8, max_difficulty: 1}]}\n")
	f.Add("api: {listen: '${HOME}'} # ${X}\n")
	if data, err := os.ReadFile("../../lode.example.yaml"); err == nil {
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := ParseConfig(strings.NewReader(text))
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("accepted config fails validation: %v", verr)
			}
		}
	})
}
