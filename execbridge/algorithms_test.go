package execbridge

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestSetAlgorithms(t *testing.T) {
	var sc ssh.ServerConfig
	SetAlgorithms(&sc, false)
	for _, list := range [][]string{sc.KeyExchanges, sc.Ciphers, sc.MACs, sc.PublicKeyAuthAlgorithms} {
		for _, a := range list {
			if strings.Contains(a, "sha1") || strings.Contains(a, "cbc") || a == ssh.KeyAlgoRSA {
				t.Errorf("modern set offers %s", a)
			}
		}
	}
	if !slices.Contains(sc.KeyExchanges, ssh.KeyExchangeCurve25519) || !slices.Contains(sc.Ciphers, ssh.CipherAES128GCM) {
		t.Errorf("modern set lacks curve25519 or aes128-gcm: %v %v", sc.KeyExchanges, sc.Ciphers)
	}
	if got := slices.Contains(sc.Ciphers, ssh.CipherChaCha20Poly1305); got == hasAESHardware() {
		t.Errorf("chacha20-poly1305 offered = %v with AES hardware = %v", got, hasAESHardware())
	}

	var legacy ssh.ServerConfig
	SetAlgorithms(&legacy, true)
	if !slices.Contains(legacy.KeyExchanges, ssh.InsecureKeyExchangeDH14SHA1) || !slices.Contains(legacy.MACs, ssh.HMACSHA1) {
		t.Errorf("legacy set lacks SHA-1 algorithms: %v %v", legacy.KeyExchanges, legacy.MACs)
	}
}
