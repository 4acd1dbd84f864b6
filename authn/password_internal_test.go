package authn

import (
	"io"
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// countingVerifier counts the verifications that reach the verifier it
// wraps.
type countingVerifier struct {
	verifier
	n *int
}

func (c countingVerifier) verify(password []byte) bool {
	*c.n++
	return c.verifier.verify(password)
}

// TestUnknownUserVerifiesTheDummy: an unknown name is checked against a
// dummy of the class most accounts have, through the same path as a
// known one (the timing benchmark measures the result; this proves the
// path, so that a shortcut for unknown names fails a test).
func TestUnknownUserVerifiesTheDummy(t *testing.T) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	s, err := newPasswordStore(&PasswordConfig{Users: []PasswordUser{
		{Name: "alice", Hash: hash("alice-pw")},
		{Name: "bob", Hash: hash("bob-pw")},
		{Name: "carol", Password: "carol-pw"}, // the minority class
	}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	db := s.staticDB
	if got, want := db.dummy.class(), db.users["alice"].class(); got != want {
		t.Fatalf("dummy class %q, want the dominant class %q", got, want)
	}
	if !db.dummy.expensive() {
		t.Error("the dummy of an expensive class must take a hash slot too")
	}
	for _, pw := range []string{"", "alice-pw", "bob-pw", "carol-pw"} {
		if db.dummy.verify([]byte(pw)) {
			t.Errorf("the dummy accepts %q", pw)
		}
	}

	var n int
	db.dummy = countingVerifier{db.dummy, &n}
	for _, pw := range []string{"alice-pw", "anything"} {
		ok, err := s.verify("mallory", []byte(pw))
		if ok || err != nil {
			t.Errorf("verify(mallory, %q) = %v, %v; want false, nil", pw, ok, err)
		}
	}
	if n != 2 {
		t.Errorf("the dummy was verified %d times for 2 attempts by an unknown user", n)
	}
	if ok, err := s.verify("alice", []byte("alice-pw")); !ok || err != nil {
		t.Errorf("verify(alice) = %v, %v", ok, err)
	}
	if n != 2 {
		t.Error("a known user must not use the dummy")
	}
}
