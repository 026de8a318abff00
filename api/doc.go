// Package api is the operator's and the miners' window into the pool: the
// JSON REST API under /api/v1, Prometheus metrics on /metrics, liveness and
// readiness probes, and the dashboard (static files embedded with go:embed,
// plain JavaScript, no build step).
//
// The package reads the pool's state only through the small interfaces it
// declares (PoolReader, BlockLister, MinerReader, PaymentLister,
// WorkerLister, Banner, ThresholdSetter); the daemon wires adapters such as
// internal/redisstore in. It never talks to Redis or the node itself.
//
// Metrics is the Prometheus side: one struct holding every collector, with
// plain methods (ShareAccepted, ShareRejected, ...) that the stratum server
// and the share ledger call through interfaces they declare.
//
// Errors: readers return ErrNotFound (wrapped) for an unknown address; the
// handlers answer it with 404 and a JSON error body. Bad input is 400.
//
// Concurrency: Server.Run starts the HTTP server and the hashrate History
// sampler and stops both when its context ends; handlers are safe for
// concurrent use as long as the readers are.
package api
