package authn_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/authn"
)

// BenchmarkPasswordKnownVsUnknown measures a failed password attempt for
// a known user and for an unknown user, interleaved in one loop so that
// both see the same machine load, for each kind of credential. It reports
// the median time of each and their ratio (unknown/known; 1.00 means an
// attacker cannot tell valid user names by timing), and the ratio of two
// known users (known2/known) as the noise floor of the measurement.
//
//	go test -run '^$' -bench BenchmarkPasswordKnownVsUnknown -benchtime 40x ./authn/
func BenchmarkPasswordKnownVsUnknown(b *testing.B) {
	argon := func(pw string) string {
		h, err := authn.HashArgon2id([]byte(pw), nil)
		require.NoError(b, err)
		return h
	}
	kinds := []struct {
		name string
		u, v authn.PasswordUser // two known users with the same kind of credential
	}{
		{"clear", authn.PasswordUser{Name: "u", Password: "pw"}, authn.PasswordUser{Name: "v", Password: "other"}},
		{"bcrypt-cost10", authn.PasswordUser{Name: "u", Hash: mustBcryptCost(b, "pw", 10)}, authn.PasswordUser{Name: "v", Hash: mustBcryptCost(b, "other", 10)}},
		{"argon2id-m64MiB-t3-p4", authn.PasswordUser{Name: "u", Hash: argon("pw")}, authn.PasswordUser{Name: "v", Hash: argon("other")}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			a, err := authn.New(&authn.Config{
				Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{k.u, k.v}},
				Penalties: &authn.PenaltyConfig{Disabled: true},
				Logger:    discard(),
			})
			require.NoError(b, err)
			cb := callbacks(a)
			// known, unknown, and a second known user as a control: the
			// known/known ratio shows the noise floor of the machine.
			conns := []fakeConn{conn("u"), conn("nobody"), conn("v")}
			times := make([][]time.Duration, len(conns))
			pw := []byte("wrong password")
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := range conns {
					c := (i + j) % len(conns) // rotate the order
					t0 := time.Now()
					if _, err := cb.PasswordCallback(conns[c], pw); err == nil {
						b.Fatal("wrong password accepted")
					}
					times[c] = append(times[c], time.Since(t0))
				}
			}
			b.StopTimer()
			// Medians: the machine is shared, and a mean follows whatever
			// else ran during one attempt.
			known, unknown, control := median(times[0]), median(times[1]), median(times[2])
			b.ReportMetric(float64(known.Nanoseconds()), "known-ns")
			b.ReportMetric(float64(unknown.Nanoseconds()), "unknown-ns")
			b.ReportMetric(float64(unknown)/float64(known), "unknown/known")
			b.ReportMetric(float64(control)/float64(known), "known2/known")
		})
	}
}
