package alerts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"time"
)

// Channel kinds of subscriptions and operator chat channels.
const (
	KindWebhook  = "webhook"
	KindDiscord  = "discord"
	KindTelegram = "telegram"
	KindEmail    = "email"
)

// Subscription is one miner's channel for one address.
type Subscription struct {
	ID      string    `json:"id"`
	Address string    `json:"address"`
	Kind    string    `json:"kind"`              // webhook, discord, telegram or email
	URL     string    `json:"url,omitempty"`     // webhook, discord, telegram
	Secret  string    `json:"secret,omitempty"`  // webhook: HMAC key of the signature
	ChatID  string    `json:"chat_id,omitempty"` // telegram
	Email   string    `json:"email,omitempty"`   // email
	Events  []string  `json:"events"`            // types delivered (MinerEvents)
	Created time.Time `json:"created"`
}

// wants reports whether the subscription receives ev.
func (s *Subscription) wants(ev *Event) bool {
	if !slices.Contains(s.Events, ev.Type) {
		return false
	}
	return ev.poolWide() || ev.Address == s.Address
}

// Store keeps the subscriptions (internal/redisstore implements it).
type Store interface {
	AddSubscription(ctx context.Context, s Subscription, maxPerAddress int) error
	RemoveSubscription(ctx context.Context, id string) (bool, error)
	Subscriptions(ctx context.Context) ([]Subscription, error)
}

// ErrTooMany is returned by Store.AddSubscription when the address has
// its maximum number of subscriptions.
var ErrTooMany = errors.New("alerts: too many subscriptions for this address")

// Tokens issues and checks the miners' subscription tokens: an HMAC of
// the (canonical) address under alerts.token_secret, so the operator can
// hand one out (admin API) and nothing needs storing.
type Tokens struct{ secret []byte }

// NewTokens returns the token issuer; an empty secret issues none.
func NewTokens(secret string) Tokens { return Tokens{[]byte(secret)} }

// Token returns the address's token ("" without a secret).
func (t Tokens) Token(address string) string {
	if len(t.secret) == 0 {
		return ""
	}
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte("lode-alerts-subscribe:" + address))
	return hex.EncodeToString(m.Sum(nil))
}

// Valid checks a token in constant time.
func (t Tokens) Valid(address, token string) bool {
	want := t.Token(address)
	return want != "" && hmac.Equal([]byte(want), []byte(token))
}
