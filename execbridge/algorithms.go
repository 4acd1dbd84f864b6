package execbridge

import (
	"runtime"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/cpu"
)

// SetAlgorithms sets the key exchanges, ciphers, MACs and public key
// algorithms a server offers, for a server in front of execbridge:
//
//   - by default, only modern ones: the hybrid ML-KEM, curve25519, NIST
//     ECDH and SHA-2 Diffie-Hellman key exchanges, AES-GCM, AES-CTR and
//     ChaCha20-Poly1305, SHA-2 MACs; nothing SHA-1 (OpenSSH 9.2 still
//     offers hmac-sha1) and nothing CBC;
//   - on a CPU with AES instructions, ChaCha20-Poly1305 is left out.
//     x/crypto implements it in plain Go on amd64, while AES uses the
//     hardware: with OpenSSH's client (which prefers ChaCha20) a session's
//     throughput rises by about a quarter when the client falls back to
//     AES (measured, docs/benchmarks.md#execbridge). Every client that
//     speaks ChaCha20 also speaks AES-CTR or AES-GCM;
//   - with legacy, x/crypto's insecure algorithms are added for old
//     clients: SHA-1 key exchanges and MACs, and CBC ciphers (which x/crypto
//     pairs only with non-EtM MACs).
//
// Host key algorithms follow the host keys given to sc.AddHostKey.
func SetAlgorithms(sc *ssh.ServerConfig, legacy bool) {
	sup := ssh.SupportedAlgorithms()
	sc.KeyExchanges = sup.KeyExchanges
	sc.Ciphers = sup.Ciphers
	if hasAESHardware() {
		sc.Ciphers = slices.DeleteFunc(sc.Ciphers, func(c string) bool { return c == ssh.CipherChaCha20Poly1305 })
	}
	sc.MACs = slices.DeleteFunc(slices.Clone(sup.MACs), func(m string) bool { return strings.Contains(m, "sha1") })
	sc.PublicKeyAuthAlgorithms = sup.PublicKeyAuths
	if legacy {
		ins := ssh.InsecureAlgorithms()
		sc.KeyExchanges = append(sc.KeyExchanges, ins.KeyExchanges...)
		sc.Ciphers = append(sc.Ciphers, ins.Ciphers...)
		sc.MACs = append(sup.MACs, ins.MACs...)
		sc.PublicKeyAuthAlgorithms = append(sc.PublicKeyAuthAlgorithms, ins.PublicKeyAuths...)
	}
}

// hasAESHardware reports whether Go's AES uses CPU instructions here.
func hasAESHardware() bool {
	switch runtime.GOARCH {
	case "amd64", "386":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	case "s390x":
		return cpu.S390X.HasAES
	}
	return false
}
