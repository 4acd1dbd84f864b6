package sse

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"github.com/dockssh/dockssh/internal/percent"
)

// MaxDimension is the largest accepted number of rows or columns: far
// above any real screen, far below what would make a terminal allocate
// absurd buffers.
const MaxDimension = 4096

// maxFormFields bounds the fields of one form body, as body-parser's
// parameterLimit does (1000) for docker-ssh.
const maxFormFields = 1000

var (
	errFormFields   = errors.New("sse: too many form fields")
	errFieldMissing = errors.New("sse: form field missing")
	errFieldRepeat  = errors.New("sse: form field given more than once")
	errDimension    = errors.New("sse: rows and cols must be whole numbers from 1 to 4096")
	errEventID      = errors.New("sse: malformed Last-Event-ID")
)

// formField returns the value of the field name in an
// application/x-www-form-urlencoded body, decoded as Node's querystring
// module (which docker-ssh's body-parser uses) decodes it: fields split at
// '&', name and value at the first '=', '+' is a space, %XX is the byte XX,
// and a '%' not followed by two hex digits stays as it is. Unlike Go's
// url.ParseQuery it accepts ';' and stray '%' (curl -d $'data=a; b\n'
// sends them raw). Unlike Node it keeps the decoded bytes as they are
// instead of replacing invalid UTF-8 with U+FFFD, so binary input reaches
// the terminal intact.
//
// A field that is missing or given more than once is an error: there is no
// right answer for two values of one keystroke.
func formField(body []byte, name string) ([]byte, error) {
	var (
		value  []byte
		found  bool
		fields int
	)
	s := body
	for len(s) > 0 {
		var field []byte
		if i := bytes.IndexByte(s, '&'); i >= 0 {
			field, s = s[:i], s[i+1:]
		} else {
			field, s = s, nil
		}
		if len(field) == 0 {
			continue
		}
		if fields++; fields > maxFormFields {
			return nil, errFormFields
		}
		k, v := field, []byte(nil)
		if i := bytes.IndexByte(field, '='); i >= 0 {
			k, v = field[:i], field[i+1:]
		}
		if string(percent.AppendDecode(nil, k, true)) != name {
			continue
		}
		if found {
			return nil, errFieldRepeat
		}
		found = true
		value = percent.AppendDecode(make([]byte, 0, len(v)), v, true)
	}
	if !found {
		return nil, errFieldMissing
	}
	return value, nil
}

// parseDimension parses a row or column count: one to four decimal digits,
// from 1 to MaxDimension. docker-ssh used JavaScript's parseInt, which
// takes "80px" as 80 and "x" as NaN (sent on as null); both are refused.
func parseDimension(s []byte) (int, error) {
	if len(s) == 0 || len(s) > 4 {
		return 0, errDimension
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errDimension
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > MaxDimension {
		return 0, errDimension
	}
	return n, nil
}

// parseEventID parses a Last-Event-ID written by appendDataEvent: the session id
// (32 lowercase hex digits), '.', and the output offset in canonical
// decimal.
func parseEventID(s string) (sessionID string, off int64, err error) {
	id, num, ok := strings.Cut(s, ".")
	if !ok || !validSessionID(id) || num == "" || len(num) > 19 || (len(num) > 1 && num[0] == '0') {
		return "", 0, errEventID
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return "", 0, errEventID
		}
	}
	off, err = strconv.ParseInt(num, 10, 64)
	if err != nil {
		return "", 0, errEventID
	}
	return id, off, nil
}

// validSessionID reports whether s has the form of a session id: 32
// lowercase hex digits (128 bits).
func validSessionID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
