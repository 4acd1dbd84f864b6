package execbridge

import (
	"errors"
	"io"
	"slices"
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
	e.backend.subsystemErr = &SubsystemError{Reason: "it has no sftp-server", Err: errors.New("stat /usr/lib/openssh/sftp-server: no such file")}
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
