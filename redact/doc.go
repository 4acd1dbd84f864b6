// Package redact provides a Redactor that keeps credentials out of
// strings, errors, URLs, log/slog records and byte streams.
//
// A Redactor masks two kinds of secrets:
//
//   - literal secrets registered with Add (or Config.Secrets), in their
//     own bytes and in their encoded forms: base64 (standard and URL
//     alphabets, at each of the three byte offsets, with and without
//     padding), percent-encoding (upper and lower case hex) and JSON string
//     escaping; in slog values of kind Any and in error messages, which
//     fmt makes of Go values, also as fmt prints a byte slice holding
//     them (decimal numbers, hex);
//   - built-in patterns, for credentials nobody registered: the body of a
//     PEM private key block (also with escaped "\n"), the credential of an
//     Authorization value (Basic, Bearer, ...), the password or bare token
//     in URL user info ("ssh://user:pass@host", "https://TOKEN@host") and
//     the value of password=-style pairs ("password=...", "token: ...",
//     `"client_secret": "..."`).
//
// Usage:
//
//	r, err := redact.New(&redact.Config{Secrets: []string{token}})
//	if err != nil { ... }
//	log := slog.New(r.Handler(slog.NewTextHandler(os.Stderr, nil)))
//	w := r.NewWriter(os.Stdout) // a stream: catches secrets split across writes
//	defer w.Close()
//	return r.Error(err)         // errors.Is/As still work
//
// The streaming Writer holds back only bytes that may still become part of
// a secret: for literal secrets, at most the longest registered form minus
// one byte; for the patterns, the bounded amounts listed in
// docs/redact.md. What is covered and what is not is described there too.
package redact
