package main

import (
	"log/slog"
	"net/http"

	"github.com/dockssh/dockssh/authn"
	"github.com/dockssh/dockssh/execbridge"
)

// newWeb returns the HTTP handler: /healthz, and the web terminal.
func newWeb(o settings, auth *authn.Authenticator, bridge *execbridge.Bridge, bcfg *execbridge.Config, log *slog.Logger) (http.Handler, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux, func() {}, nil
}
