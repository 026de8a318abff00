package alerts

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/lode-pool/lode/internal/webhook"
)

// API serves the subscription endpoints (docs/alerts.md): Handler for
// miners, with their address's token, under /api/v1/alerts/, and
// AdminHandler for the operator under /api/v1/admin/alerts/ (the api
// package checks the admin token before it).
type API struct {
	cfg    Config
	store  Store
	tokens Tokens
	// Canonical checks a payout address and returns the spelling the
	// pool keys it by; nil accepts any non-empty text.
	canonical func(string) (string, error)
	now       func() time.Time
}

// NewAPI returns the subscription API over store.
func NewAPI(cfg Config, store Store, canonical func(string) (string, error)) *API {
	cfg = cfg.withDefaults()
	return &API{cfg: cfg, store: store, tokens: NewTokens(cfg.TokenSecret.Reveal()), canonical: canonical, now: time.Now}
}

// SubscribeRequest is the body of a subscription POST.
type SubscribeRequest struct {
	Address string   `json:"address"`
	Kind    string   `json:"kind"`
	URL     string   `json:"url,omitempty"`
	Secret  string   `json:"secret,omitempty"`
	ChatID  string   `json:"chat_id,omitempty"`
	Email   string   `json:"email,omitempty"`
	Events  []string `json:"events,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, status int, msg string) { writeJSON(w, status, apiError{msg}) }

// Handler is the miners' API: /api/v1/alerts/subscriptions (GET ?address=,
// POST) and /api/v1/alerts/subscriptions/{id} (DELETE ?address=), each
// with "Authorization: Bearer <token of the address>".
func (a *API) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, false) })
}

// AdminHandler is the operator's API: /api/v1/admin/alerts/tokens (POST
// {"address"}: the address's token), and subscriptions like Handler's for
// any address, without a token (GET lists all).
func (a *API) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { a.serve(w, r, true) })
}

func (a *API) serve(w http.ResponseWriter, r *http.Request, admin bool) {
	path := r.URL.Path
	if admin {
		path = strings.TrimPrefix(path, "/api/v1/admin/alerts")
	} else {
		path = strings.TrimPrefix(path, "/api/v1/alerts")
	}
	switch {
	case admin && path == "/tokens" && r.Method == http.MethodPost:
		a.issueToken(w, r)
	case path == "/subscriptions" && r.Method == http.MethodPost:
		a.subscribe(w, r, admin)
	case path == "/subscriptions" && r.Method == http.MethodGet:
		a.list(w, r, admin)
	case strings.HasPrefix(path, "/subscriptions/") && r.Method == http.MethodDelete:
		a.unsubscribe(w, r, strings.TrimPrefix(path, "/subscriptions/"), admin)
	case path == "/subscriptions" || path == "/tokens" || strings.HasPrefix(path, "/subscriptions/"):
		fail(w, http.StatusMethodNotAllowed, "method not allowed")
	default:
		fail(w, http.StatusNotFound, "no such endpoint")
	}
}

func (a *API) address(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("address is required")
	}
	if a.canonical == nil {
		return s, nil
	}
	c, err := a.canonical(s)
	if err != nil {
		return "", errors.New("not a payout address of this pool's network")
	}
	return c, nil
}

// authorized checks the bearer token of address (always true for admin).
func (a *API) authorized(w http.ResponseWriter, r *http.Request, address string, admin bool) bool {
	if admin {
		return true
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !a.tokens.Valid(address, token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lode-alerts"`)
		fail(w, http.StatusUnauthorized, "missing or wrong token for this address (the pool operator issues it)")
		return false
	}
	return true
}

func (a *API) issueToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Address string `json:"address"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "body: want {\"address\": \"…\"}")
		return
	}
	addr, err := a.address(req.Address)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	t := a.tokens.Token(addr)
	if t == "" {
		fail(w, http.StatusServiceUnavailable, "alerts.token_secret is not set: no tokens can be issued")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"address": addr, "token": t})
}

func (a *API) subscribe(w http.ResponseWriter, r *http.Request, admin bool) {
	var req SubscribeRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, http.StatusBadRequest, "body: "+err.Error())
		return
	}
	addr, err := a.address(req.Address)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	if !a.authorized(w, r, addr, admin) {
		return
	}
	s, err := a.check(req)
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	s.Address, s.Created = addr, a.now().UTC()
	var id [12]byte
	_, _ = rand.Read(id[:])
	s.ID = hex.EncodeToString(id[:])
	if err := a.store.AddSubscription(r.Context(), s, a.cfg.MaxSubscriptions); err != nil {
		if errors.Is(err, ErrTooMany) {
			fail(w, http.StatusConflict, err.Error())
			return
		}
		fail(w, http.StatusServiceUnavailable, "subscriptions cannot be stored right now")
		return
	}
	s.Secret = ""
	writeJSON(w, http.StatusCreated, s)
}

// check validates a request's channel and events.
func (a *API) check(req SubscribeRequest) (Subscription, error) {
	s := Subscription{Kind: req.Kind, URL: req.URL, Secret: req.Secret, ChatID: req.ChatID, Events: req.Events}
	switch req.Kind {
	case KindWebhook, KindDiscord, KindTelegram:
		if err := webhook.CheckURL(req.URL); err != nil {
			return s, errors.New("url " + err.Error())
		}
		if req.Kind == KindWebhook && req.Secret == "" {
			return s, errors.New("secret is required for a webhook (its deliveries are signed with it)")
		}
		if req.Kind == KindTelegram && req.ChatID == "" {
			return s, errors.New("chat_id is required for telegram")
		}
	case KindEmail:
		if a.cfg.Email.Server == "" {
			return s, errors.New("this pool sends no email (alerts.email.server is not set)")
		}
		m, err := mail.ParseAddress(req.Email)
		if err != nil {
			return s, errors.New("email: want an email address")
		}
		s.Email = m.Address
	default:
		return s, errors.New("kind: want webhook, discord, telegram or email")
	}
	if len(s.Events) == 0 {
		s.Events = slices.Clone(defaultMinerEvents)
	}
	for _, e := range s.Events {
		if !slices.Contains(MinerEvents, e) {
			return s, errors.New("events: " + e + " is not one of " + strings.Join(MinerEvents, ", "))
		}
	}
	return s, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request, admin bool) {
	q := r.URL.Query().Get("address")
	var addr string
	if q != "" || !admin {
		var err error
		if addr, err = a.address(q); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if !a.authorized(w, r, addr, admin) {
		return
	}
	all, err := a.store.Subscriptions(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "subscriptions cannot be read right now")
		return
	}
	out := []Subscription{}
	for _, s := range all {
		if addr == "" || s.Address == addr {
			s.Secret = ""
			out = append(out, s)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"subscriptions": out})
}

func (a *API) unsubscribe(w http.ResponseWriter, r *http.Request, id string, admin bool) {
	var addr string
	if !admin {
		var err error
		if addr, err = a.address(r.URL.Query().Get("address")); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		if !a.authorized(w, r, addr, admin) {
			return
		}
	}
	all, err := a.store.Subscriptions(r.Context())
	if err != nil {
		fail(w, http.StatusServiceUnavailable, "subscriptions cannot be read right now")
		return
	}
	i := slices.IndexFunc(all, func(s Subscription) bool { return s.ID == id && (admin || s.Address == addr) })
	if i < 0 {
		fail(w, http.StatusNotFound, "no such subscription")
		return
	}
	if _, err := a.store.RemoveSubscription(r.Context(), id); err != nil {
		fail(w, http.StatusServiceUnavailable, "subscriptions cannot be changed right now")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
