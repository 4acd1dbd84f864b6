package integration

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDockerSSHDFleet compares the session latency of docker-sshd's
// endpoints side by side, interleaved: the local socket, an OpenSSH sshd
// reached through package dialer (docker system dial-stdio over one
// multiplexed SSH connection), the same with direct-streamlocal channels to
// the socket instead, and tcp:// with TLS. "login" is a whole
// `ssh u+CONTAINER.ENDPOINT@gw true` (SSH handshake to the gateway
// included); "session" is one more session on an open OpenSSH ControlMaster
// connection, which leaves only what the endpoint costs.
//
//	go test -run XXX -bench BenchmarkDockerSSHDFleet -benchtime 1x -timeout 30m ./integration/
func BenchmarkDockerSSHDFleet(b *testing.B) {
	e := startFleet(b)
	routes := []struct{ name, user string }{
		{"local", "u+" + e.local.Name + ".local"},
		{"ssh", "u+" + e.a.Name + ".host-a"},
		{"ssh-streamlocal", "u+" + e.b.Name + ".host-b"},
		{"tls", "u+" + e.shared.Name + ".tls"},
	}
	const rounds = 20
	for range b.N {
		login := map[string][]time.Duration{}
		session := map[string][]time.Duration{}
		socks := map[string]string{}
		for _, r := range routes {
			sock := filepath.Join(b.TempDir(), "mux")
			master := e.p.ssh(b, r.user, e.login, []string{"-M", "-S", sock, "-N", "-o", "ControlPersist=no"})
			if err := master.Start(); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { master.Process.Kill(); master.Wait() })
			waitFile(b, sock)
			socks[r.name] = sock
			// Warm: the endpoint's connection and the shell lookup.
			if _, errOut, status := e.run(b, r.user, "true"); status != 0 {
				b.Fatalf("%s: %s", r.name, errOut)
			}
		}
		channelsBefore := sessions(b, e.sshdA)
		for range rounds {
			for _, r := range routes {
				start := time.Now()
				if _, errOut, status := e.run(b, r.user, "true"); status != 0 {
					b.Fatalf("%s: %s", r.name, errOut)
				}
				login[r.name] = append(login[r.name], time.Since(start))
				start = time.Now()
				if _, errOut, status := runCmd(b, e.p.ssh(b, r.user, nil, []string{"-S", socks[r.name], "-o", "ControlMaster=no"}, "true"), nil); status != 0 {
					b.Fatalf("%s: %s", r.name, errOut)
				}
				session[r.name] = append(session[r.name], time.Since(start))
			}
		}
		// Each ssh:// connection the Docker client opens is an SSH
		// channel, and with dial-stdio a docker process, on host-a.
		b.ReportMetric(float64(sessions(b, e.sshdA)-channelsBefore)/(2*rounds), "host-a-channels/session")
		for _, r := range routes {
			l, s := median(login[r.name]), median(session[r.name]) // ms
			b.ReportMetric(l, r.name+"-login-p50-ms")
			b.ReportMetric(s, r.name+"-session-p50-ms")
			b.Logf("%-15s login p50 %6.1f ms (x%.2f of local)  session p50 %6.1f ms (x%.2f of local)", r.name,
				l, l/median(login["local"]), s, s/median(session["local"]))
		}
	}
}
