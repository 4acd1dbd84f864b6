// Package sse provides an http.Handler that serves a web terminal over
// Server-Sent Events, speaking docker-ssh's web API byte for byte
// (GET /api/v1/terminal/stream, POST /api/v1/terminal/send/:id,
// POST /api/v1/terminal/resize-window/:id) and adding what a deployment
// needs: authentication, session ownership, Origin checks, heartbeats,
// resume after a reconnect, backpressure and limits.
//
// The handler knows nothing about containers: each new session calls
// Config.Start, which returns a [Terminal] (execbridge's Process is one).
//
//	h, err := sse.New(&sse.Config{
//		Start: func(ctx context.Context, principal string, rows, cols int) (sse.Terminal, error) {
//			return backend.Start(ctx, execbridge.ProcessSpec{Target: t, Argv: []string{"/bin/sh"}, TTY: true, Rows: rows, Cols: cols})
//		},
//		Authenticate: sse.BasicAuth("web terminal", checkPassword),
//		Grace:        30 * time.Second,
//	})
//	if err != nil { ... }
//	defer h.Close()
//	http.Handle("/term/", http.StripPrefix("/term", h))
//
// See docs/sse.md for the wire format, the differences from docker-ssh, and
// deployment behind a reverse proxy.
package sse
