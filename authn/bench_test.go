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
// both times and their ratio (unknown/known; 1.00 means an attacker
// cannot tell valid user names by timing).
//
//	go test -run '^$' -bench BenchmarkPasswordKnownVsUnknown -benchtime 40x ./authn/
func BenchmarkPasswordKnownVsUnknown(b *testing.B) {
	argonDefault, err := authn.HashArgon2id([]byte("pw"), nil)
	require.NoError(b, err)
	kinds := []struct {
		name string
		user authn.PasswordUser
	}{
		{"clear", authn.PasswordUser{Name: "u", Password: "pw"}},
		{"bcrypt-cost10", authn.PasswordUser{Name: "u", Hash: mustBcryptCost(b, "pw", 10)}},
		{"argon2id-m64MiB-t3-p4", authn.PasswordUser{Name: "u", Hash: argonDefault}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			a, err := authn.New(&authn.Config{
				Passwords: &authn.PasswordConfig{Users: []authn.PasswordUser{k.user}},
				Penalties: &authn.PenaltyConfig{Disabled: true},
				Logger:    discard(),
			})
			require.NoError(b, err)
			cb := callbacks(a)
			known, unknown := conn("u"), conn("nobody")
			pw := []byte("wrong password")
			var tKnown, tUnknown time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				first, second := known, unknown
				if i%2 == 1 {
					first, second = unknown, known
				}
				t0 := time.Now()
				_, err1 := cb.PasswordCallback(first, pw)
				t1 := time.Now()
				_, err2 := cb.PasswordCallback(second, pw)
				t2 := time.Now()
				if err1 == nil || err2 == nil {
					b.Fatal("wrong password accepted")
				}
				if first == known {
					tKnown += t1.Sub(t0)
					tUnknown += t2.Sub(t1)
				} else {
					tUnknown += t1.Sub(t0)
					tKnown += t2.Sub(t1)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(tKnown.Nanoseconds())/float64(b.N), "known-ns/attempt")
			b.ReportMetric(float64(tUnknown.Nanoseconds())/float64(b.N), "unknown-ns/attempt")
			b.ReportMetric(float64(tUnknown)/float64(tKnown), "unknown/known")
		})
	}
}
