// Package alerts notifies operators and miners of what needs their
// attention: a worker that stopped sending shares, a block found or
// orphaned, a payout sent or stuck, and the node, Redis or the payouts
// becoming unhealthy (payouts halted after a failed broadcast).
//
// A Monitor compares what the pool's stores say (through the interfaces it
// declares: Workers, Blocks, Payments, checks) with what it saw at its
// previous step and turns the differences into Events; a Dispatcher
// delivers each event to the operator's channels (a signed JSON webhook,
// Discord- or Telegram-compatible chat webhooks, SMTP email) and to the
// miners' subscriptions for the event's address. Delivery is
// internal/webhook's (in order per receiver, retried with backoff, then
// dropped with a log line and a counted metric) or the Mailer's for email;
// nothing waits on a receiver, and nothing here is on the share path: the
// monitor reads the statistics the ledger already writes.
//
// Miners subscribe through the API (Handler) with a token the operator
// gives them (Tokens: an HMAC of the address, so no token is stored), or
// the operator subscribes them through the admin API (AdminHandler).
// docs/alerts.md describes events, channels, configuration and the API.
package alerts
