package api

import "net/http"

// handlerRoutes mounts the handlers other packages serve (Config.Economics,
// Alerts, AlertsAdmin) without the api package importing them: public ones
// behind the per-client rate limit like every public route, the admin one
// behind the bearer token.
func (s *Server) handlerRoutes(m *http.ServeMux) {
	econ := orUnavailable(s.cfg.Economics, "economics is off: set economics.enabled in lode.yaml (docs/economics.md)")
	m.HandleFunc("GET /api/v1/economics", s.limited(econ))
	m.HandleFunc("GET /api/v1/economics/", s.limited(econ))
	alerts := orUnavailable(s.cfg.Alerts, "alerts are off: set alerts.enabled in lode.yaml (docs/alerts.md)")
	admin := s.admin(orUnavailable(s.cfg.AlertsAdmin, "alerts are off: set alerts.enabled in lode.yaml (docs/alerts.md)"))
	// Per method: a method-less pattern would conflict with "GET /".
	for _, method := range []string{"GET", "POST", "DELETE"} {
		m.HandleFunc(method+" /api/v1/alerts/", s.limited(alerts))
		m.HandleFunc(method+" /api/v1/admin/alerts/", admin)
	}
}

// orUnavailable is h, or a 503 with msg when the role or section that
// provides h is not wired in this process.
func orUnavailable(h http.Handler, msg string) http.HandlerFunc {
	if h != nil {
		return h.ServeHTTP
	}
	return func(w http.ResponseWriter, _ *http.Request) { writeError(w, http.StatusServiceUnavailable, msg) }
}
