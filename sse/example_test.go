package sse_test

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/dockssh/dockssh/sse"
)

// echoTerminal is a stand-in terminal that prints what is typed.
type echoTerminal struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func newEchoTerminal() *echoTerminal {
	r, w := io.Pipe()
	return &echoTerminal{r: r, w: w}
}

func (e *echoTerminal) Read(p []byte) (int, error)             { return e.r.Read(p) }
func (e *echoTerminal) Write(p []byte) (int, error)            { return e.w.Write(p) }
func (e *echoTerminal) Resize(context.Context, int, int) error { return nil }
func (e *echoTerminal) Wait(context.Context) error             { return nil }
func (e *echoTerminal) Close() error                           { return e.w.Close() }

// A web terminal behind HTTP Basic authentication, driven the way
// docker-ssh's README drives its API with curl.
func ExampleNew() {
	h, err := sse.New(&sse.Config{
		Start: func(ctx context.Context, principal string, rows, cols int) (sse.Terminal, error) {
			return newEchoTerminal(), nil // execbridge's Backend.Start in a real server
		},
		Authenticate: sse.BasicAuth("web terminal", func(_ context.Context, user, password string) (string, error) {
			if user == "alice" && subtle.ConstantTimeCompare([]byte(password), []byte("s3cret")) == 1 {
				return user, nil
			}
			return "", errors.New("wrong password")
		}),
		Grace:  30 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	defer h.Close()

	// curl -N -u alice:s3cret http://HOST/api/v1/terminal/stream
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/terminal/stream", nil)
	req.SetBasicAuth("alice", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	events := bufio.NewReader(resp.Body)
	line, _ := events.ReadString('\n') // event: connectionId
	fmt.Print(line)
	line, _ = events.ReadString('\n') // data: <session id>
	id := strings.TrimSpace(strings.TrimPrefix(line, "data: "))
	events.ReadString('\n')

	// curl -u alice:s3cret -X POST http://HOST/api/v1/terminal/send/$ID -d $'data=ls -al\n'
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/api/v1/terminal/send/"+id,
		strings.NewReader("data="+url.QueryEscape("ls -al\n")))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("alice", "s3cret")
	sent, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	sent.Body.Close()

	line, _ = events.ReadString('\n')
	fmt.Print(line)
	line, _ = events.ReadString('\n')
	fmt.Print(line)
	// Output:
	// event: connectionId
	// event: data
	// data: "ls -al\n"
}

// Bearer tokens: from "Authorization: Bearer" for scripts, or from the
// page opened as https://HOST/term/#token=TOKEN.
func ExampleBearerAuth() {
	auth := sse.BearerAuth(sse.StaticTokens(map[string]string{"Zk3...long random token": "ops"}))
	r := httptest.NewRequest(http.MethodGet, "/api/v1/terminal/stream", nil)
	r.Header.Set("Authorization", "Bearer Zk3...long random token")
	principal, err := auth(r)
	fmt.Println(principal, err)
	// Output:
	// ops <nil>
}

// Mounted under a prefix of an existing server.
func ExampleHandler_ServeHTTP() {
	h, err := sse.New(&sse.Config{
		Start:        func(context.Context, string, int, int) (sse.Terminal, error) { return newEchoTerminal(), nil },
		Authenticate: func(*http.Request) (string, error) { return "", errors.New("no logins today") },
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()
	mux := http.NewServeMux()
	mux.Handle("/term/", http.StripPrefix("/term", h))

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/term/api/v1/terminal/stream", nil))
	fmt.Println(w.Code)
	// Output:
	// 401
}
