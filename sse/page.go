package sse

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// The xterm.js versions the page loads, with their Subresource Integrity
// hashes (sha384 of the files in the npm packages, which CDNs that mirror
// npm serve unchanged). A changed or compromised file is refused by the
// browser instead of running with access to a shell.
const (
	XtermVersion    = "6.0.0"
	XtermFitVersion = "0.11.0"

	xtermJSIntegrity  = "sha384-f/1U6Z9wM4D71a5eRXEZnyOTMOvjqxr2XLwh+Go1OvIl3L3tOcvUrzudnhbECwl4"
	xtermCSSIntegrity = "sha384-n2n7twoohnW+d3myBKaUgl7DSiwidw6MkQy9oesGzkPpMjejKRR3XlnD+5yCdtBD"
	fitJSIntegrity    = "sha384-txoiwu4RR2GD3qySbaj+BbzibkLbSJRcfqGYMu6z1EqHil4A2dyBiBW5dlacG6OR"
)

//go:embed static
var staticFiles embed.FS

// renderPage renders index.html for the xterm.js base URL and returns it
// with the page's Content-Security-Policy.
func renderPage(base string) ([]byte, string, error) {
	u, err := url.Parse(base)
	if err != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		(u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https") || (u.Scheme == "") != (u.Host == "") {
		return nil, "", fmt.Errorf("sse: XtermBaseURL %q: want an http(s) URL or a path", base)
	}
	t, err := template.ParseFS(staticFiles, "static/index.html")
	if err != nil {
		return nil, "", fmt.Errorf("sse: page template: %w", err)
	}
	var b bytes.Buffer
	err = t.Execute(&b, map[string]string{
		"Base":         strings.TrimSuffix(base, "/"),
		"XtermVersion": XtermVersion,
		"FitVersion":   XtermFitVersion,
		"XtermJS":      xtermJSIntegrity,
		"XtermCSS":     xtermCSSIntegrity,
		"FitJS":        fitJSIntegrity,
	})
	if err != nil {
		return nil, "", fmt.Errorf("sse: page template: %w", err)
	}
	src := "'self'"
	if u.Host != "" {
		src += " " + u.Scheme + "://" + u.Host
	}
	// xterm.js sets inline styles, hence 'unsafe-inline' for styles only.
	csp := "default-src 'none'; script-src " + src + "; style-src " + src + " 'unsafe-inline'; " +
		"font-src " + src + " data:; img-src 'self' data:; connect-src 'self'; " +
		"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return b.Bytes(), csp, nil
}

func (h *Handler) servePage(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("Cache-Control", "no-store")
	w.Write(h.page)
}

// serveStatic serves term.js and term.css.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := path.Base(r.URL.Path)
	b, err := staticFiles.ReadFile("static/" + name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := "text/css; charset=utf-8"
	if strings.HasSuffix(name, ".js") {
		ct = "text/javascript; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}
