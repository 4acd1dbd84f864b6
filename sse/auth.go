package sse

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// TokenCookie is the cookie BearerAuth also reads the token from. The page
// sets it (SameSite=Strict, for its own path) when opened with
// "#token=..." in the URL: a fragment is never sent to a server or written
// to an access log, and EventSource cannot send an Authorization header.
const TokenCookie = "dockssh-token"

// ErrNoCredentials is returned (wrapped in an *AuthError) by BasicAuth and
// BearerAuth when a request carries no credentials of their kind.
var ErrNoCredentials = errors.New("sse: no credentials")

// AuthError is an authentication failure with the challenge to send in the
// WWW-Authenticate header of the 401 response.
type AuthError struct {
	Challenge string // e.g. `Basic realm="web terminal", charset="UTF-8"`
	Err       error
}

func (e *AuthError) Error() string { return "sse: authentication failed: " + e.Err.Error() }
func (e *AuthError) Unwrap() error { return e.Err }

// PasswordFunc checks a user name and password and returns the principal
// they authenticate (usually the user name). It must compare in constant
// time and return an error for a wrong password; the error is logged, never
// shown to the client, and must not contain the password.
type PasswordFunc func(ctx context.Context, user, password string) (principal string, err error)

// TokenFunc checks a bearer token and returns the principal it
// authenticates; see PasswordFunc for the error.
type TokenFunc func(ctx context.Context, token string) (principal string, err error)

// BasicAuth returns an AuthFunc for HTTP Basic authentication (RFC 7617)
// against verify, with realm in the challenge (browsers show their login
// dialog, and then send the credentials with every request of the page,
// EventSource included). verify runs for every request, each keystroke
// included: a verifier that uses a deliberately slow hash should remember
// recent successes.
//
// Basic credentials cross the network in clear text: serve the handler
// over HTTPS, or on 127.0.0.1 behind something that is.
func BasicAuth(realm string, verify PasswordFunc) AuthFunc {
	challenge := `Basic realm=` + strconv.Quote(realm) + `, charset="UTF-8"`
	return func(r *http.Request) (string, error) {
		user, password, ok := r.BasicAuth()
		if !ok {
			return "", &AuthError{Challenge: challenge, Err: ErrNoCredentials}
		}
		principal, err := verify(r.Context(), user, password)
		if err != nil {
			return "", &AuthError{Challenge: challenge, Err: err}
		}
		return principal, nil
	}
}

// BearerAuth returns an AuthFunc that takes a token from the
// "Authorization: Bearer" header (RFC 6750) or, for the page, from the
// TokenCookie cookie, and checks it with verify.
func BearerAuth(verify TokenFunc) AuthFunc {
	const challenge = `Bearer`
	return func(r *http.Request) (string, error) {
		token := ""
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, rest, ok := strings.Cut(h, " ")
			if ok && strings.EqualFold(scheme, "Bearer") {
				token = strings.TrimSpace(rest)
			}
		} else if c, err := r.Cookie(TokenCookie); err == nil {
			token = c.Value
		}
		if token == "" {
			return "", &AuthError{Challenge: challenge, Err: ErrNoCredentials}
		}
		principal, err := verify(r.Context(), token)
		if err != nil {
			return "", &AuthError{Challenge: challenge + ` error="invalid_token"`, Err: err}
		}
		return principal, nil
	}
}

// StaticTokens returns a TokenFunc that accepts the tokens of a map from
// token to principal, compared in constant time.
func StaticTokens(tokens map[string]string) TokenFunc {
	type entry struct{ token, principal string }
	var list []entry
	for t, p := range tokens {
		if t != "" {
			list = append(list, entry{t, p})
		}
	}
	return func(_ context.Context, token string) (string, error) {
		principal, found := "", 0
		for _, e := range list {
			if subtle.ConstantTimeCompare([]byte(e.token), []byte(token)) == 1 {
				principal, found = e.principal, 1
			}
		}
		if found == 0 {
			return "", errors.New("sse: unknown token")
		}
		return principal, nil
	}
}
