package redact

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
)

// Handler returns a slog.Handler that redacts each record and passes it
// to h: the message, every attribute key and value (inside groups too,
// after resolving LogValuers), and the attributes given to WithAttrs.
//
//   - A string value is redacted like String.
//   - The value of an attribute whose key names a credential (it ends in
//     password, secret, token, api_key, private-key, ..., or in the word
//     pwd, pass or auth, as for password= pairs) is replaced by the mask
//     whatever its kind.
//   - An error value becomes the error returned by Error, still an error.
//   - A *url.URL or url.URL becomes the string URL makes of it.
//   - Any other value of kind Any becomes the redacted text of its "%+v"
//     form: a handler's own encoding (JSON, a MarshalJSON method) could
//     show what that text hides, so the value is not passed on as is.
//     Besides what String masks, that text is searched for each secret as
//     fmt prints it inside a []byte, [N]byte or []rune (decimal numbers,
//     "[104 117 ...]") and as hex (%x, %X), so a secret held in a byte
//     slice anywhere in a struct, map or slice is masked too.
//   - Numbers, booleans, times and durations pass unchanged.
//
// Attributes given to WithAttrs are redacted again when secrets are added
// after the call, so they follow the current secret set. Enabled, levels
// and the handler's output format are h's.
func (r *Redactor) Handler(h slog.Handler) slog.Handler {
	return &handler{r: r, base: h}
}

type handler struct {
	r    *Redactor
	base slog.Handler
	// ops are the WithGroup and WithAttrs calls made on this handler's
	// ancestors and itself, in order, with their unredacted arguments.
	ops []handlerOp
	// derived is base with ops applied, redacted with one snapshot of
	// the secrets; rebuilt when the secrets change.
	derived atomic.Pointer[derivedHandler]
}

type handlerOp struct {
	group string
	attrs []slog.Attr
}

type derivedHandler struct {
	gen uint64
	h   slog.Handler
}

func (h *handler) inner() slog.Handler {
	if len(h.ops) == 0 {
		return h.base
	}
	gen := h.r.snap.Load().gen
	if d := h.derived.Load(); d != nil && d.gen == gen {
		return d.h
	}
	x := h.base
	for _, op := range h.ops {
		if op.attrs != nil {
			x = x.WithAttrs(h.r.attrs(op.attrs))
		} else {
			x = x.WithGroup(h.r.String(op.group))
		}
	}
	h.derived.Store(&derivedHandler{gen: gen, h: x})
	return x
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner().Enabled(ctx, l)
}

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.r.attr(a))
		return true
	})
	return h.inner().Handle(ctx, out)
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	return h.with(handlerOp{attrs: append([]slog.Attr(nil), attrs...)})
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return h.with(handlerOp{group: name})
}

func (h *handler) with(op handlerOp) *handler {
	ops := make([]handlerOp, len(h.ops), len(h.ops)+1)
	copy(ops, h.ops)
	return &handler{r: h.r, base: h.base, ops: append(ops, op)}
}

func (r *Redactor) attrs(as []slog.Attr) []slog.Attr {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.attr(a)
	}
	return out
}

// attr returns a redacted copy of a.
func (r *Redactor) attr(a slog.Attr) slog.Attr {
	if a.Equal(slog.Attr{}) {
		return a // handlers drop empty attributes; keep it empty
	}
	v := a.Value.Resolve()
	key := r.String(a.Key)
	if v.Kind() == slog.KindGroup {
		return slog.Attr{Key: key, Value: slog.GroupValue(r.attrs(v.Group())...)}
	}
	if _, ok := sensitiveKey([]byte(a.Key)); ok {
		s := v.String()
		if s == "" {
			return slog.String(key, "")
		}
		return slog.String(key, string(r.appendMask(nil, []byte(s))))
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(key, r.String(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.Any(key, r.Error(x))
		case []byte:
			return slog.String(key, string(r.Bytes(x)))
		case *url.URL:
			if x == nil {
				return slog.String(key, "<nil>")
			}
			return slog.String(key, r.URL(x.String()))
		case url.URL:
			return slog.String(key, r.URL(x.String()))
		default:
			return slog.String(key, r.valueText(fmt.Sprintf("%+v", x)))
		}
	}
	return slog.Attr{Key: key, Value: v}
}
