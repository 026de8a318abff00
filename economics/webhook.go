package economics

import (
	"encoding/json"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/lode-pool/lode/internal/webhook"
)

// WebhookConfig is where advice changes are POSTed (package
// internal/webhook, shared with the alerts).
type WebhookConfig = webhook.Config

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
const SignatureHeader = webhook.SignatureHeader

// Webhook defaults.
const (
	DefaultWebhookTimeout = webhook.DefaultTimeout
	DefaultWebhookTries   = webhook.DefaultMaxAttempts
	DefaultInitialBackoff = webhook.DefaultInitialBackoff
	DefaultMaxBackoff     = webhook.DefaultMaxBackoff
	DefaultWebhookQueue   = webhook.DefaultQueue
)

// validateWebhook checks the webhook section, naming its keys.
func validateWebhook(w WebhookConfig) error {
	var fe *webhook.FieldError
	if err := w.Validate(); errors.As(err, &fe) {
		return bad("webhook."+fe.Key, fe.Value, fe.Reason)
	} else if err != nil {
		return bad("webhook", w.URL, err.Error())
	}
	return nil
}

// Sign returns the SignatureHeader value for body.
func Sign(secret string, body []byte) string { return webhook.Sign(secret, body) }

// VerifySignature checks a SignatureHeader value in constant time, for
// receivers (and tests).
func VerifySignature(secret string, body []byte, header string) bool {
	return webhook.VerifySignature(secret, body, header)
}

// Event is one webhook delivery: an advice change.
type Event struct {
	// ID is unique per event and stable across retries (idempotency key).
	ID       string    `json:"id"`
	Type     string    `json:"type"`  // "advice_changed"
	Scope    string    `json:"scope"` // "worker" or "model"
	Key      string    `json:"key"`   // worker name or model name
	Advice   string    `json:"advice"`
	Previous string    `json:"previous"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	// Watts the worker or model draws at its measured hashrate.
	Watts float64 `json:"watts"`
	// MarginSatsPerDay and its interval, when a power price is known.
	MarginSatsPerDay *Interval `json:"margin_sat_per_day,omitempty"`
}

// Notifier delivers advice changes to the webhook in order, one at a
// time, with retries (webhook.Notifier); Notify never blocks.
type Notifier struct{ *webhook.Notifier }

// NewNotifier returns a notifier for cfg (defaults applied); with no URL it
// discards events.
func NewNotifier(cfg WebhookConfig, logger *zap.Logger) *Notifier {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Notifier{webhook.New(cfg, logger)}
}

// Notify queues ev for delivery. It never blocks: with a full queue the
// oldest waiting event is dropped.
func (n *Notifier) Notify(ev Event) {
	if n == nil {
		return
	}
	if ev.Type == "" {
		ev.Type = "advice_changed"
	}
	n.Notifier.Notify(func(id string) ([]byte, error) {
		ev.ID = id
		return json.Marshal(ev)
	})
}
