package execbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestSubsystemSFTP(t *testing.T) {
	e := newTestEnv(t, echo, envOpts{config: func(c *Config) { c.User = "app" }})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	if want := []string{"/usr/lib/openssh/sftp-server", "-u", "app"}; !slices.Equal(p.spec.Argv, want) {
		t.Errorf("argv = %q, want %q", p.spec.Argv, want)
	}
	if p.spec.TTY || p.spec.User != "app" {
		t.Errorf("spec TTY %v user %q, want no terminal, user app", p.spec.TTY, p.spec.User)
	}
}

func TestSubsystemRefused(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.RequestSubsystem("netconf"); err == nil {
		t.Errorf("subsystem netconf accepted")
	}

	// A backend that cannot serve subsystems refuses sftp too.
	e2 := newTestEnv(t, nil, envOpts{config: func(c *Config) { c.Backend = plainBackend{c.Backend.(*fakeBackend)} }})
	if err := e2.session(t, e2.dial(t, "alice")).RequestSubsystem("sftp"); err == nil {
		t.Errorf("sftp accepted by a backend without SubsystemBackend")
	}
}

func TestSubsystemUnavailableInTarget(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	e.backend.subsystemErr = &TargetError{Reason: "it has no sftp-server", Err: errors.New("stat /usr/lib/openssh/sftp-server: no such file")}
	// x/crypto's Session cannot Wait after RequestSubsystem: use the
	// channel itself.
	ch, reqs, err := e.dial(t, "alice").OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(execRequest{"sftp"})); !ok || err != nil {
		t.Fatalf("subsystem request = %v, %v", ok, err)
	}
	status := make(chan uint32, 1)
	go func() {
		for r := range reqs {
			if r.Type == "exit-status" {
				var es exitStatus
				ssh.Unmarshal(r.Payload, &es)
				status <- es.Status
			}
		}
		close(status)
	}()
	errOut, _ := io.ReadAll(ch.Stderr())
	if want := "dockssh: cannot serve sftp in container web1: it has no sftp-server\n"; string(errOut) != want {
		t.Errorf("stderr %q, want %q", errOut, want)
	}
	if got, ok := <-status; !ok || got != 1 {
		t.Errorf("exit status %d (sent: %v), want 1", got, ok)
	}
}

// TestSubsystemForcedCommand: a login with a forced command gets SFTP only
// when the forced command is the SFTP server; otherwise the forced command
// runs, with SSH_ORIGINAL_COMMAND=sftp, as in sshd.
func TestSubsystemForcedCommand(t *testing.T) {
	for _, tt := range []struct {
		force    string
		wantSFTP bool
	}{
		{"internal-sftp", true},
		{"/usr/lib/openssh/sftp-server -R", true},
		{"echo no sftp for you", false},
	} {
		t.Run(tt.force, func(t *testing.T) {
			e := newTestEnv(t, nil, envOpts{keyOptions: `command="` + tt.force + `"`})
			s := e.session(t, e.dial(t, "alice"))
			if err := s.RequestSubsystem("sftp"); err != nil {
				t.Fatal(err)
			}
			p := e.backend.next(t)
			gotSFTP := p.spec.Argv[0] == "/usr/lib/openssh/sftp-server"
			if gotSFTP != tt.wantSFTP {
				t.Errorf("argv %q: sftp %v, want %v", p.spec.Argv, gotSFTP, tt.wantSFTP)
			}
			if !tt.wantSFTP && !slices.Contains(p.spec.Env, "SSH_ORIGINAL_COMMAND=sftp") {
				t.Errorf("env %q, want SSH_ORIGINAL_COMMAND=sftp", p.spec.Env)
			}
		})
	}
}

func TestSubsystemForcedOptions(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{keyOptions: `command="internal-sftp -R -l INFO"`})
	s := e.session(t, e.dial(t, "alice"))
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	p := e.backend.next(t)
	if want := []string{"/usr/lib/openssh/sftp-server", "-u", "", "-R"}; !slices.Equal(p.spec.Argv, want) {
		t.Errorf("argv = %q, want %q (read-only kept)", p.spec.Argv, want)
	}

	for _, force := range []string{"internal-sftp -P remove", "/usr/lib/openssh/sftp-server -p open,close", "internal-sftp -u 077"} {
		if _, err := sftpForcedOptions(force); err == nil {
			t.Errorf("sftpForcedOptions(%q) = nil error, want a refusal", force)
		}
	}
}

// TestSubsystemNeedsNoShell: a container without a shell (FROM scratch)
// still gets SFTP.
func TestSubsystemNeedsNoShell(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{})
	e.backend.shellErr = errors.New("no shell in this image")
	s := e.session(t, e.dial(t, "alice"))
	if err := s.RequestSubsystem("sftp"); err != nil {
		t.Fatal(err)
	}
	if p := e.backend.next(t); p.spec.Argv[0] != "/usr/lib/openssh/sftp-server" {
		t.Errorf("argv = %q", p.spec.Argv)
	}
}

func TestIsLegacySCP(t *testing.T) {
	for cmd, want := range map[string]bool{
		"scp -t /tmp":          true,
		"scp -f file":          true,
		"scp -v -r -t -- /tmp": true,
		"/usr/bin/scp -pt x":   true,
		"scp file host:":       false,
		"scpx -t /tmp":         false,
		"ls -t":                false,
		"scp -- -t":            false,
	} {
		if got := isLegacySCP(cmd); got != want {
			t.Errorf("isLegacySCP(%q) = %v, want %v", cmd, got, want)
		}
	}
}

// lookPathBackend is a fakeBackend whose containers have no scp.
type lookPathBackend struct{ *fakeBackend }

func (lookPathBackend) LookPath(ctx context.Context, t Target, name string) (string, error) {
	return "", fmt.Errorf("%w: %s", ErrProgramNotFound, name)
}

func TestLegacySCPWithoutSCP(t *testing.T) {
	e := newTestEnv(t, nil, envOpts{config: func(c *Config) { c.Backend = lookPathBackend{c.Backend.(*fakeBackend)} }})
	s := e.session(t, e.dial(t, "alice"))
	var errOut strings.Builder
	s.Stderr = &errOut
	err := s.Run("scp -t /tmp")
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
		t.Errorf("Run(scp -t) = %v, want exit status 1", err)
	}
	if !strings.Contains(errOut.String(), "has no scp, which scp -O (the legacy protocol) runs there") {
		t.Errorf("stderr %q", errOut.String())
	}
}
