package redact

import (
	"errors"
	"fmt"
	"net"
	"net/url"
)

// Error returns err with its message redacted, or nil for nil. The result
// wraps err: errors.Is and errors.As see err and everything it wraps, and
// Unwrap returns it. The message is redacted each time Error is called, so
// secrets added later are masked too. Like the values of Handler, the
// message is also searched for each secret as fmt prints a byte slice
// holding it (decimal numbers, hex), since messages are made with fmt.
//
// A *url.Error (which quotes its URL) comes back as a new *url.Error with
// the URL redacted by URL and its Err wrapped by Error, so that
// errors.As(err, &urlErr) finds a value that is safe to print. When err
// or an error it wraps is a net.Error, the result is a net.Error too, with
// Timeout and Temporary answered by that error; errors.As then finds the
// redacted wrapper first.
//
// Only the outermost message is rewritten: errors.As on an error deeper in
// the chain finds the original value, whose own Error is not redacted.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	switch e := err.(type) {
	case *redactedError:
		if e.r == r {
			return err
		}
	case *redactedNetError:
		if e.r == r {
			return err
		}
	case *url.Error:
		return &url.Error{Op: e.Op, URL: r.URL(e.URL), Err: r.Error(e.Err)}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return &redactedNetError{redactedError: redactedError{r: r, err: err}, ne: ne}
	}
	return &redactedError{r: r, err: err}
}

// redactedError is err with a redacted message.
type redactedError struct {
	r   *Redactor
	err error
}

func (e *redactedError) Error() string {
	if _, ok := e.err.(url.EscapeError); ok {
		// net/url quotes the bad escape, which may be part of a
		// password.
		return "invalid URL escape " + e.r.mask
	}
	return e.r.valueText(e.err.Error())
}

func (e *redactedError) Unwrap() error { return e.err }

// GoString keeps %#v from printing the wrapped error's fields.
func (e *redactedError) GoString() string { return fmt.Sprintf("redact.Error(%q)", e.Error()) }

// redactedNetError is a redactedError for a net.Error.
type redactedNetError struct {
	redactedError
	ne net.Error
}

// Timeout reports whether the wrapped net.Error is a timeout.
func (e *redactedNetError) Timeout() bool { return e.ne.Timeout() }

// Temporary answers as the wrapped net.Error does (net.Error still has the
// method, so the wrapper must too).
func (e *redactedNetError) Temporary() bool {
	//lint:ignore SA1019 mirrors the wrapped error
	return e.ne.Temporary()
}
