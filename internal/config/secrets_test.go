package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The secrets of the packages' sections (price-feed key, webhook and
// chat credentials, SMTP password, the subscription tokens' key) are named
// in lode.yaml like the node's and Redis's, {env: NAME} or {file: /path},
// and ResolveSecrets loads them into the sections the daemon hands the
// packages.
func TestSectionSecretsFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	for name, v := range map[string]string{"hook": "hook-secret\n", "tg": "123:ABC", "smtp": "smtp-pw\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LODE_TEST_TOKENS", "token-key")
	t.Setenv("LODE_TEST_FEED_KEY", "feed-key")
	text := `roles: [api]
economics:
  btc_price:
    source: feed
    feed: {url: "https://prices.example/p?key={token}", field: usd, token: {env: LODE_TEST_FEED_KEY}}
  webhook: {url: "https://fleet.example/h", secret: {file: ` + filepath.Join(dir, "hook") + `}}
alerts:
  token_secret: {env: LODE_TEST_TOKENS}
  chat:
    - {kind: telegram, url: "https://api.telegram.org/bot{token}/sendMessage", chat_id: "-1", token: {file: ` + filepath.Join(dir, "tg") + `}}
  email: {server: "smtp.example.org:587", from: pool@example.org, to: [ops@example.org], username: pool,
          password: {file: ` + filepath.Join(dir, "smtp") + `}}
`
	cfg, err := Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Alerts.TokenSecret.Reveal() != "" {
		t.Fatal("a secret is read before ResolveSecrets")
	}
	if _, err := cfg.ResolveSecrets(); err != nil {
		t.Fatal(err)
	}
	for key, got := range map[string]string{
		"economics.btc_price.feed.token": cfg.Economics.BTCPrice.Feed.Token.Reveal(),
		"economics.webhook.secret":       cfg.Economics.Webhook.Secret.Reveal(),
		"alerts.token_secret":            cfg.Alerts.TokenSecret.Reveal(),
		"alerts.chat[0].token":           cfg.Alerts.Chat[0].Token.Reveal(),
		"alerts.email.password":          cfg.Alerts.Email.Password.Reveal(),
	} {
		want := map[string]string{"economics.btc_price.feed.token": "feed-key", "economics.webhook.secret": "hook-secret",
			"alerts.token_secret": "token-key", "alerts.chat[0].token": "123:ABC", "alerts.email.password": "smtp-pw"}[key]
		if got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}

	// Missing ones are all reported, each with its key path.
	text = strings.ReplaceAll(text, "LODE_TEST_TOKENS", "LODE_TEST_SURELY_UNSET_TOKENS")
	text = strings.ReplaceAll(text, filepath.Join(dir, "smtp"), filepath.Join(dir, "missing"))
	cfg, err = Parse(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.ResolveSecrets()
	for _, want := range []string{"alerts.token_secret: environment variable LODE_TEST_SURELY_UNSET_TOKENS is not set",
		"alerts.email.password: read secret file"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// A secret written in the file is refused without repeating it, and the
// packages' own checks see a named secret as set.
func TestSectionSecretProblems(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"alerts: {token_secret: hunter2}", "alerts.token_secret: a secret is not written in the file: give {env: NAME}"},
		{"alerts: {email: {password: hunter2}}", "alerts.email.password: a secret is not written in the file"},
		{"economics: {webhook: {url: 'https://h/x', secret: hunter2}}", "economics.webhook.secret: a secret is not written"},
		{"alerts: {webhook: {url: 'https://h/x'}}", "alerts.webhook.secret: is required with a webhook url"},
		{"alerts: {webhook: {url: 'https://h/x', secret: {env: A, file: /b}}}", "alerts.webhook.secret: set env or file, not both"},
		{"alerts: {chat: [{kind: discord, url: 'https://discord.com/api/webhooks/1/{token}'}]}", "alerts.chat[0].token: is required"},
		{"economics: {power: {feed: {url: 'https://p/x', header: X-Key}}}", "economics.power.feed.header: carries the token"},
	} {
		_, err := Parse(strings.NewReader("roles: [api]\n" + tc.yaml + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.yaml, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the secret reached the message: %v", tc.yaml, err)
		}
	}
	ok := "alerts: {webhook: {url: 'https://h/x', secret: {env: LODE_TEST_HOOK}}}"
	if _, err := Parse(strings.NewReader("roles: [api]\n" + ok + "\n")); err != nil {
		t.Errorf("%s: %v", ok, err)
	}
}
