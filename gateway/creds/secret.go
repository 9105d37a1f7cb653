package creds

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Alphabets without look-alikes (0/O, 1/l/I), so a credential read off a
// screen and typed into an NVR is right the first time; letters and digits
// only, so neither part needs escaping in a URL.
const (
	userAlphabet = "abcdefghjkmnpqrstuvwxyz23456789"
	passAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789"
	// UserPrefix starts every credential username.
	UserPrefix = "cg"
	userRandom = 8  // 31^8 ≈ 2^39.6 usernames (ids, not secrets)
	passLen    = 20 // 55^20 ≈ 2^115.6 passwords
)

// randomString draws n characters of alphabet uniformly (rejection
// sampling: no modulo bias).
func randomString(alphabet string, n int) (string, error) {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out), nil
}

func newUsername() (string, error) {
	s, err := randomString(userAlphabet, userRandom)
	return UserPrefix + s, err
}

func newPassword() (string, error) { return randomString(passAlphabet, passLen) }

// LooksLikeUsername tells a credential username from anything else sent as
// an RTSP user name (token users type any name), without a lookup.
func LooksLikeUsername(u string) bool {
	rest, ok := strings.CutPrefix(u, UserPrefix)
	if !ok || len(rest) != userRandom {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(userAlphabet, rest[i]) < 0 {
			return false
		}
	}
	return true
}

// LooksLikePassword reports whether p could be a credential password
// (a JWT never is: it has dots).
func LooksLikePassword(p string) bool {
	if len(p) != passLen {
		return false
	}
	for i := 0; i < len(p); i++ {
		if strings.IndexByte(passAlphabet, p[i]) < 0 {
			return false
		}
	}
	return true
}

// basicHash is SHA-256(salt || password), computed without allocating
// (the verify path runs it on every Basic request).
func basicHash(salt []byte, password string) [sha256.Size]byte {
	var buf [128]byte
	b := append(append(buf[:0], salt...), password...)
	return sha256.Sum256(b)
}

// HA1 is RFC 2617's MD5(username:realm:password), hex.
func HA1(username, realm, password string) string {
	sum := md5.Sum([]byte(username + ":" + realm + ":" + password))
	return hex.EncodeToString(sum[:])
}

// digestResponse is MD5(HA1:nonce:MD5(method:uri)), hex (RFC 2617 without
// qop, as RTSP servers challenge and ffmpeg, VLC and NVRs answer). It does
// not allocate for the lengths RTSP uses.
func digestResponse(ha1, nonce, method, uri string) [2 * md5.Size]byte {
	var buf [512]byte
	b := append(append(append(buf[:0], method...), ':'), uri...)
	ha2 := md5.Sum(b)
	b = append(append(append(append(buf[:0], ha1...), ':'), nonce...), ':')
	b = hex.AppendEncode(b, ha2[:])
	sum := md5.Sum(b)
	var out [2 * md5.Size]byte
	hex.Encode(out[:], sum[:])
	return out
}

// equalString compares in time that depends on the lengths only.
func equalString(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// sealer seals HA1 values with the node key.
type sealer struct {
	aead  cipher.AEAD
	keyID string
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("stream credential key: want 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	id := sha256.Sum256(append([]byte("camgate stream-credentials key id:"), key...))
	return &sealer{aead: aead, keyID: hex.EncodeToString(id[:4])}, nil
}

func sealAD(id, realm string) []byte { return []byte(id + "\x00" + realm) }

func (s *sealer) seal(id, realm, ha1 string) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, []byte(ha1), sealAD(id, realm)), nil
}

var errOtherKey = errors.New("sealed with another node key")

func (s *sealer) open(c *Credential) (string, error) {
	if c.KeyID != s.keyID {
		return "", fmt.Errorf("%w (%s, this node has %s)", errOtherKey, c.KeyID, s.keyID)
	}
	n := s.aead.NonceSize()
	if len(c.SealedHA1) < n {
		return "", errors.New("sealed HA1 too short")
	}
	ha1, err := s.aead.Open(nil, c.SealedHA1[:n], c.SealedHA1[n:], sealAD(c.ID, c.Realm))
	if err != nil {
		return "", fmt.Errorf("opening HA1: %w", err)
	}
	return string(ha1), nil
}

// LoadOrCreateKey reads the node key (64 hex characters) from path, or
// creates it (0600) when the file does not exist.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("stream credential key %s: want 64 hex characters", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("stream credential key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) { // created by a concurrent start
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("stream credential key: %w", err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stream credential key: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stream credential key: %w", err)
	}
	return key, f.Close()
}
