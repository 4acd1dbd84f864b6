package hostkeys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/scrypt"
)

// Encrypted PKCS#8 ("-----BEGIN ENCRYPTED PRIVATE KEY-----", RFC 5958 and
// PKCS#5 v2.1 / RFC 8018) is what "openssl genpkey -aes256" and
// "openssl pkcs8 -topk8" write. Neither the standard library nor x/crypto/ssh
// decrypts it, so this file does: PBES2 with PBKDF2 (HMAC-SHA1/224/256/384/
// 512) or scrypt (RFC 7914), and AES-CBC. The legacy PBES1 schemes (DES,
// RC2, RC4) are refused.

var (
	oidPBES2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidScrypt = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}

	oidHMACSHA1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidHMACSHA224 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 8}
	oidHMACSHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}
	oidHMACSHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}
	oidHMACSHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}

	oidAES128CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
)

// kdfLimits bound key-derivation work, so that a damaged or hostile file
// cannot keep the caller busy for hours or exhaust memory.
type kdfLimits struct {
	pbkdf2Iterations int
	scryptN          int
	scryptRP         int // r*p
	scryptMemory     int // bytes: scrypt needs 128*N*r
}

// defaultKDFLimits leave ample room above what OpenSSL writes by default
// (2048 PBKDF2 iterations; scrypt N=16384, r=8, p=1).
var defaultKDFLimits = kdfLimits{
	pbkdf2Iterations: 10_000_000,
	scryptN:          1 << 22,
	scryptRP:         1 << 10,
	scryptMemory:     256 << 20,
}

type encryptedPrivateKeyInfo struct {
	Algorithm     pkix.AlgorithmIdentifier
	EncryptedData []byte
}

type pbes2Params struct {
	KeyDerivationFunc pkix.AlgorithmIdentifier
	EncryptionScheme  pkix.AlgorithmIdentifier
}

type pbkdf2Params struct {
	Salt           []byte
	IterationCount int
	KeyLength      int                      `asn1:"optional"`
	PRF            pkix.AlgorithmIdentifier `asn1:"optional"`
}

type scryptParams struct {
	Salt                     []byte
	CostParameter            int
	BlockSize                int
	ParallelizationParameter int
	KeyLength                int `asn1:"optional"`
}

// errPKCS8Decrypt means the passphrase is wrong (or the data is damaged):
// CBC decryption gives no better signal than bad padding or bad DER.
var errPKCS8Decrypt = errors.New("decryption failed")

// decryptPKCS8 decrypts the DER of an ENCRYPTED PRIVATE KEY block and parses
// the PKCS#8 key inside.
func decryptPKCS8(der, passphrase []byte, limits kdfLimits) (any, error) {
	var info encryptedPrivateKeyInfo
	if rest, err := asn1.Unmarshal(der, &info); err != nil || len(rest) > 0 {
		return nil, errors.New("malformed encrypted PKCS#8 key")
	}
	if !info.Algorithm.Algorithm.Equal(oidPBES2) {
		return nil, fmt.Errorf("encrypted PKCS#8 scheme %v is not supported (only PBES2; re-encrypt with: openssl pkcs8 -topk8 -v2 aes-256-cbc)", info.Algorithm.Algorithm)
	}
	var params pbes2Params
	if rest, err := asn1.Unmarshal(info.Algorithm.Parameters.FullBytes, &params); err != nil || len(rest) > 0 {
		return nil, errors.New("malformed PBES2 parameters")
	}

	keyLen, iv, err := cbcParams(params.EncryptionScheme)
	if err != nil {
		return nil, err
	}
	key, err := deriveKey(params.KeyDerivationFunc, passphrase, keyLen, limits)
	if err != nil {
		return nil, err
	}

	data := info.EncryptedData
	if len(data) == 0 || len(data)%aes.BlockSize != 0 {
		return nil, errors.New("encrypted PKCS#8 data is not a whole number of AES blocks")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, data)
	plain, ok := unpadPKCS7(plain, aes.BlockSize)
	if !ok {
		return nil, errPKCS8Decrypt
	}
	k, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, errPKCS8Decrypt
	}
	return k, nil
}

// cbcParams returns the AES key length and IV of an encryption scheme.
func cbcParams(alg pkix.AlgorithmIdentifier) (keyLen int, iv []byte, err error) {
	switch {
	case alg.Algorithm.Equal(oidAES128CBC):
		keyLen = 16
	case alg.Algorithm.Equal(oidAES192CBC):
		keyLen = 24
	case alg.Algorithm.Equal(oidAES256CBC):
		keyLen = 32
	default:
		return 0, nil, fmt.Errorf("encrypted PKCS#8 cipher %v is not supported (only AES-CBC)", alg.Algorithm)
	}
	if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &iv); err != nil || len(rest) > 0 || len(iv) != aes.BlockSize {
		return 0, nil, errors.New("malformed AES-CBC IV")
	}
	return keyLen, iv, nil
}

func deriveKey(kdf pkix.AlgorithmIdentifier, passphrase []byte, keyLen int, limits kdfLimits) ([]byte, error) {
	switch {
	case kdf.Algorithm.Equal(oidPBKDF2):
		var p pbkdf2Params
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, errors.New("malformed PBKDF2 parameters")
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("PBKDF2 key length %d does not fit the cipher (%d)", p.KeyLength, keyLen)
		}
		if p.IterationCount < 1 || p.IterationCount > limits.pbkdf2Iterations {
			return nil, fmt.Errorf("PBKDF2 iteration count %d out of range 1..%d", p.IterationCount, limits.pbkdf2Iterations)
		}
		h, err := prfHash(p.PRF)
		if err != nil {
			return nil, err
		}
		return pbkdf2.Key(h, string(passphrase), p.Salt, p.IterationCount, keyLen)
	case kdf.Algorithm.Equal(oidScrypt):
		var p scryptParams
		if rest, err := asn1.Unmarshal(kdf.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return nil, errors.New("malformed scrypt parameters")
		}
		if p.KeyLength != 0 && p.KeyLength != keyLen {
			return nil, fmt.Errorf("scrypt key length %d does not fit the cipher (%d)", p.KeyLength, keyLen)
		}
		n, r, par := p.CostParameter, p.BlockSize, p.ParallelizationParameter
		if n < 2 || n > limits.scryptN || n&(n-1) != 0 || r < 1 || par < 1 ||
			r > limits.scryptRP || par > limits.scryptRP || r*par > limits.scryptRP || 128*n*r > limits.scryptMemory {
			return nil, fmt.Errorf("scrypt parameters N=%d r=%d p=%d out of range", n, r, par)
		}
		return scrypt.Key(passphrase, p.Salt, n, r, par, keyLen)
	}
	return nil, fmt.Errorf("encrypted PKCS#8 key derivation %v is not supported (only PBKDF2 and scrypt)", kdf.Algorithm)
}

func prfHash(prf pkix.AlgorithmIdentifier) (func() hash.Hash, error) {
	switch {
	case len(prf.Algorithm) == 0, prf.Algorithm.Equal(oidHMACSHA1): // DEFAULT algid-hmacWithSHA1
		return sha1.New, nil
	case prf.Algorithm.Equal(oidHMACSHA224):
		return sha256.New224, nil
	case prf.Algorithm.Equal(oidHMACSHA256):
		return sha256.New, nil
	case prf.Algorithm.Equal(oidHMACSHA384):
		return sha512.New384, nil
	case prf.Algorithm.Equal(oidHMACSHA512):
		return sha512.New, nil
	}
	return nil, fmt.Errorf("PBKDF2 PRF %v is not supported", prf.Algorithm)
}

// unpadPKCS7 strips PKCS#7 padding, reporting whether it was well formed.
func unpadPKCS7(b []byte, blockSize int) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	n := int(b[len(b)-1])
	if n == 0 || n > blockSize || n > len(b) {
		return nil, false
	}
	for _, c := range b[len(b)-n:] {
		if int(c) != n {
			return nil, false
		}
	}
	return b[:len(b)-n], true
}
