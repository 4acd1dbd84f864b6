package dialer

import (
	"os"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/dockssh/dockssh/hostkeys"
)

// defaultHostKeys is the HostKeyFunc used when Config.HostKeyCheck is nil:
// the hostkeys package over the host's known_hosts files, under
// Config.HostKeyPolicy. Its HostKeyAlgorithms puts the algorithms of the
// keys known for the host first, which x/crypto needs (it checks only the
// key type it negotiated: golang/go#29286).
//
// One hostkeys.KnownHosts is kept per list of files; it re-reads a file
// that changed, so a fixed known_hosts takes effect on the next connection.
func (d *Dialer) defaultHostKeys(hostport string, files []string) (ssh.HostKeyCallback, []string, error) {
	if len(files) == 0 {
		// UserKnownHostsFile none (and no global file): nothing is known.
		files = []string{os.DevNull}
	}
	key := strings.Join(files, "\x00")
	d.khMu.Lock()
	kh, ok := d.knownHosts[key]
	d.khMu.Unlock()
	if !ok {
		var err error
		kh, err = hostkeys.New(&hostkeys.Config{
			Files:  files,
			Policy: d.cfg.HostKeyPolicy,
			Logger: d.log,
		})
		if err != nil {
			return nil, nil, err
		}
		d.khMu.Lock()
		if d.knownHosts == nil {
			d.knownHosts = map[string]*hostkeys.KnownHosts{}
		}
		if prev, ok := d.knownHosts[key]; ok {
			kh = prev
		} else {
			d.knownHosts[key] = kh
		}
		d.khMu.Unlock()
	}
	return kh.HostKeyCallback(), kh.HostKeyAlgorithms(hostport), nil
}
