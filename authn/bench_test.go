package authn_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dockssh/dockssh/authn"
)

// BenchmarkPasswordKnownVsUnknown measures a failed password attempt for
// a known user and for an unknown user, interleaved in one loop so that
// both see the same machine load, for each kind of credential. It reports
// the median time of each, the median of the per-iteration ratios
// unknown/known (1.00 means an attacker cannot tell valid user names by
// timing), and the same ratio for two known users (known2/known) as the
// noise floor of the measurement.
//
//	go test -run '^$' -bench BenchmarkPasswordKnownVsUnknown -benchtime 5s -count 3 ./authn/
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
			// The ratios are medians of per-iteration ratios: the three
			// attempts of one iteration run back to back, so a change of
			// machine load between iterations cancels out.
			b.ReportMetric(float64(median(times[0]).Nanoseconds()), "known-ns")
			b.ReportMetric(float64(median(times[1]).Nanoseconds()), "unknown-ns")
			b.ReportMetric(pairedRatio(times[1], times[0]), "unknown/known")
			b.ReportMetric(pairedRatio(times[2], times[0]), "known2/known")
		})
	}
}

// pairedRatio is the median over i of a[i]/b[i].
func pairedRatio(a, b []time.Duration) float64 {
	r := make([]float64, len(a))
	for i := range a {
		r[i] = float64(a[i]) / float64(b[i])
	}
	slices.Sort(r)
	return r[len(r)/2]
}
