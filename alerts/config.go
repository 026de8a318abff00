package alerts

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"

	"github.com/lode-pool/lode/internal/secret"
	"github.com/lode-pool/lode/internal/webhook"
)

// Config is the alerts section of lode.yaml. The zero value is valid and
// off.
type Config struct {
	// Enabled runs the monitor (under a Redis lease: one process sends)
	// and serves the subscription API.
	Enabled bool `yaml:"enabled"`
	// Interval between two looks at the stores (default 30 s).
	Interval time.Duration `yaml:"interval"`
	// WorkerOffline: a worker without an accepted share for this long is
	// offline (default 10 min).
	WorkerOffline time.Duration `yaml:"worker_offline"`
	// TokenSecret keys the miners' subscription tokens (HMAC-SHA256 of the
	// address); without it miners cannot subscribe themselves (the admin
	// API still can). lode.yaml names where it is kept: {env: NAME} or
	// {file: /path}.
	TokenSecret secret.Value `yaml:"token_secret"`
	// MaxSubscriptions per address (default 5).
	MaxSubscriptions int `yaml:"max_subscriptions"`
	// AllowPrivateTargets lets miners' webhooks point at loopback and
	// private addresses (off: the pool never POSTs into its own network
	// on a miner's behalf).
	AllowPrivateTargets bool `yaml:"allow_private_targets"`
	// Delivery is the retry policy of miners' webhooks (url and secret
	// unused: each subscription has its own).
	Delivery webhook.Config `yaml:"delivery"`
	// Operator channels: every event.
	Webhook webhook.Config `yaml:"webhook"`
	Chat    []ChatConfig   `yaml:"chat"`
	Email   EmailConfig    `yaml:"email"`
}

// ChatConfig is a chat webhook: Discord (and Slack-compatible
// "content"), or Telegram's sendMessage (URL
// https://api.telegram.org/bot{token}/sendMessage and ChatID). Both URLs
// are credentials: write {token} in the URL where the bot's token (or
// the Discord webhook's) goes, and name where Token is kept.
type ChatConfig struct {
	Kind   string `yaml:"kind"` // discord or telegram
	URL    string `yaml:"url"`
	ChatID string `yaml:"chat_id"` // telegram
	// Token replaces {token} in URL: {env: NAME} or {file: /path}.
	Token secret.Value `yaml:"token"`
}

// EmailConfig sends events by SMTP. Server empty: no email (and miners
// cannot subscribe by email).
type EmailConfig struct {
	Server   string   `yaml:"server"` // host:port
	From     string   `yaml:"from"`
	To       []string `yaml:"to"` // the operator's addresses
	Username string   `yaml:"username"`
	// Password of Username: {env: NAME} or {file: /path}.
	Password secret.Value `yaml:"password"`
	// Timeout bounds one delivery (default 30 s); failures are retried
	// with the operator webhook's backoff policy.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults.
const (
	DefaultInterval         = 30 * time.Second
	DefaultWorkerOffline    = 10 * time.Minute
	DefaultMaxSubscriptions = 5
	DefaultEmailTimeout     = 30 * time.Second
)

// DefaultConfig is the section with every default filled in (and off).
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.WorkerOffline == 0 {
		c.WorkerOffline = DefaultWorkerOffline
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if c.Email.Timeout == 0 {
		c.Email.Timeout = DefaultEmailTimeout
	}
	c.Delivery = c.Delivery.WithDefaults()
	c.Webhook = c.Webhook.WithDefaults()
	return c
}

// ConfigError is a bad value, named by its key under alerts:.
type ConfigError struct {
	Key    string
	Value  any
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("alerts.%s = %v: %s", e.Key, e.Value, e.Reason)
}

// ConfigKey and ConfigProblem let the config file's loader report the error
// under its full key path.
func (e *ConfigError) ConfigKey() string { return e.Key }

// ConfigProblem is the reason with the value the file holds, if any.
func (e *ConfigError) ConfigProblem() string {
	if e.Value == nil || e.Value == "" {
		return e.Reason
	}
	return fmt.Sprintf("%s (got %v)", e.Reason, e.Value)
}

// Validate checks every value and returns all problems found, each a
// *ConfigError naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, v any, reason string) { errs = append(errs, &ConfigError{key, v, reason}) }
	if c.Interval < 0 {
		bad("interval", c.Interval, "must not be negative")
	}
	if c.WorkerOffline < 0 {
		bad("worker_offline", c.WorkerOffline, "must not be negative")
	}
	if c.MaxSubscriptions < 0 {
		bad("max_subscriptions", c.MaxSubscriptions, "must not be negative")
	}
	hook := func(key string, w webhook.Config, unsigned bool) {
		err := w.Validate()
		if unsigned {
			err = w.ValidateUnsigned()
		}
		var fe *webhook.FieldError
		if errors.As(err, &fe) {
			bad(key+"."+fe.Key, fe.Value, fe.Reason)
		}
	}
	hook("webhook", c.Webhook, false)
	d := c.Delivery
	d.URL, d.Secret = "", secret.Value{}
	if d.Timeout < 0 || d.MaxAttempts < 0 || d.InitialBackoff < 0 || d.MaxBackoff < 0 || d.Queue < 0 {
		bad("delivery", fmt.Sprintf("%+v", d), "no value may be negative")
	}
	for i, ch := range c.Chat {
		key := fmt.Sprintf("chat[%d]", i)
		switch ch.Kind {
		case KindDiscord, KindTelegram:
		default:
			bad(key+".kind", ch.Kind, "want discord or telegram")
		}
		if err := webhook.CheckURL(strings.ReplaceAll(ch.URL, webhook.TokenPlaceholder, "token")); err != nil {
			bad(key+".url", ch.URL, err.Error())
		}
		if strings.Contains(ch.URL, webhook.TokenPlaceholder) && !ch.Token.IsSet() {
			bad(key+".token", "", "is required: the url has "+webhook.TokenPlaceholder)
		}
		if ch.Kind == KindTelegram && ch.ChatID == "" {
			bad(key+".chat_id", "", "is required for telegram")
		}
	}
	if e := c.Email; e.Server != "" {
		if _, _, err := net.SplitHostPort(e.Server); err != nil {
			bad("email.server", e.Server, "want host:port")
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			bad("email.from", e.From, "want an email address")
		}
		for i, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				bad(fmt.Sprintf("email.to[%d]", i), to, "want an email address")
			}
		}
		if e.Timeout < 0 {
			bad("email.timeout", e.Timeout, "must not be negative")
		}
	}
	return errors.Join(errs...)
}
