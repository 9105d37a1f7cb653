package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// The algorithms camgate accepts, one per key type. Each key is pinned to
// exactly one of them, which is what rules out alg confusion: an RSA key is
// never handed to the HMAC verifier, a secret never to RSA.
const (
	algHS256 = "HS256"
	algEdDSA = "EdDSA"
	algES256 = "ES256"
	algRS256 = "RS256"
)

// RSA sizes accepted: below 2048 is forgeable in practice, above 8192 only
// makes each verification slow.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// key is one parsed verification key.
type key struct {
	alg    string // the only algorithm this key verifies
	kid    string // selects the key; "" for the HS256 secret
	pub    any    // []byte, ed25519.PublicKey, *ecdsa.PublicKey or *rsa.PublicKey
	source string // where it came from, for logs: "hs256_secret", "public_keys[1]", "jwks"
}

// keySet is an immutable snapshot of every usable key; it is swapped whole
// when the JWKS is refetched, so Verify reads it without locking.
type keySet struct {
	byKid map[string]*key
	// byAlg holds the candidates for a token without a known kid, in the
	// form the jwt parser takes (a set, or a single key when there is one).
	byAlg map[string]any
	// algCount is how many keys verify each algorithm: a token that does not
	// select one by kid is tried against them only up to MaxKeysWithoutKid.
	algCount  map[string]int
	jwksCount int
}

func newKeySet(static, fetched []*key) *keySet {
	ks := &keySet{byKid: make(map[string]*key), byAlg: make(map[string]any), algCount: make(map[string]int)}
	sets := make(map[string][]jwt.VerificationKey)
	// Static keys first: a JWKS entry cannot shadow a configured key's kid.
	for _, k := range append(append([]*key(nil), static...), fetched...) {
		if k.kid != "" {
			if _, dup := ks.byKid[k.kid]; dup {
				continue
			}
			ks.byKid[k.kid] = k
		}
		sets[k.alg] = append(sets[k.alg], k.pub)
	}
	for alg, keys := range sets {
		ks.algCount[alg] = len(keys)
		if len(keys) == 1 {
			ks.byAlg[alg] = keys[0]
		} else {
			ks.byAlg[alg] = jwt.VerificationKeySet{Keys: keys}
		}
	}
	ks.jwksCount = len(fetched)
	return ks
}

// parsePEMKey parses one public key (PKIX "PUBLIC KEY", PKCS#1 "RSA PUBLIC
// KEY" or an X.509 "CERTIFICATE") and pins its algorithm. Its kid is its RFC
// 7638 JWK thumbprint.
func parsePEMKey(text string) (*key, error) {
	block, rest := pem.Decode([]byte(strings.TrimSpace(text)))
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("more than one PEM block (give one key per entry)")
	}
	var pub any
	var err error
	switch {
	case block.Type == "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(block.Bytes)
	case block.Type == "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case block.Type == "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			pub = cert.PublicKey
		}
	case strings.Contains(block.Type, "PRIVATE KEY"):
		return nil, fmt.Errorf("%q is a private key: configure the public key only", block.Type)
	default:
		return nil, fmt.Errorf("unsupported PEM type %q (want PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", block.Type, err)
	}
	k, err := pinKey(pub)
	if err != nil {
		return nil, err
	}
	k.kid, err = thumbprint(k.pub)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// pinKey assigns the one algorithm a public key may verify.
func pinKey(pub any) (*key, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key size")
		}
		return &key{alg: algEdDSA, pub: p}, nil
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA curve %s is not supported (only P-256, for ES256)", p.Curve.Params().Name)
		}
		return &key{alg: algES256, pub: p}, nil
	case *rsa.PublicKey:
		if bits := p.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is not supported (need %d to %d)", bits, minRSABits, maxRSABits)
		}
		if p.E < 3 || p.E%2 == 0 || p.E > 1<<31-1 {
			return nil, fmt.Errorf("RSA public exponent %d is invalid", p.E)
		}
		return &key{alg: algRS256, pub: p}, nil
	}
	return nil, fmt.Errorf("unsupported public key type %T (want Ed25519, P-256 or RSA)", pub)
}

// thumbprint is the RFC 7638 JWK SHA-256 thumbprint: the required members in
// lexicographic order, no whitespace, base64url without padding.
func thumbprint(pub any) (string, error) {
	b64 := base64.RawURLEncoding.EncodeToString
	var canon string
	switch p := pub.(type) {
	case ed25519.PublicKey:
		canon = `{"crv":"Ed25519","kty":"OKP","x":"` + b64(p) + `"}`
	case *ecdsa.PublicKey:
		point, err := p.Bytes() // 0x04 || X || Y, each 32 bytes for P-256
		if err != nil || len(point) != 65 {
			return "", errors.New("bad P-256 point")
		}
		canon = `{"crv":"P-256","kty":"EC","x":"` + b64(point[1:33]) + `","y":"` + b64(point[33:]) + `"}`
	case *rsa.PublicKey:
		e := big.NewInt(int64(p.E)).Bytes()
		canon = `{"e":"` + b64(e) + `","kty":"RSA","n":"` + b64(p.N.Bytes()) + `"}`
	default:
		return "", fmt.Errorf("no thumbprint for %T", pub)
	}
	sum := sha256.Sum256([]byte(canon))
	return b64(sum[:]), nil
}

// jwk is the subset of RFC 7517 members camgate reads.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	D   string `json:"d"`
}

// parseJWK turns one JWKS entry into a pinned key. A declared alg must agree
// with the key type; an entry for encryption (use "enc") is refused.
func parseJWK(j jwk) (*key, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, fmt.Errorf("use %q is not sig", j.Use)
	}
	if j.D != "" {
		// A published private key is compromised; trusting it would let
		// anyone who read the JWKS mint tokens.
		return nil, errors.New("entry holds a private key")
	}
	var pub any
	var want string
	switch {
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		x, err := b64Decode(j.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 x")
		}
		pub, want = ed25519.PublicKey(x), algEdDSA
	case j.Kty == "EC" && j.Crv == "P-256":
		x, errX := b64Decode(j.X)
		y, errY := b64Decode(j.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad P-256 coordinates")
		}
		p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("bad P-256 point: %w", err)
		}
		pub, want = p, algES256
	case j.Kty == "RSA":
		n, errN := b64Decode(j.N)
		e, errE := b64Decode(j.E)
		if errN != nil || errE != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad RSA n or e")
		}
		pub, want = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, algRS256
	default:
		return nil, fmt.Errorf("unsupported key type %q/%q", j.Kty, j.Crv)
	}
	if j.Alg != "" && j.Alg != want && !(want == algEdDSA && j.Alg == "Ed25519") {
		return nil, fmt.Errorf("alg %q is not supported for a %s key (only %s)", j.Alg, j.Kty, want)
	}
	k, err := pinKey(pub)
	if err != nil {
		return nil, err
	}
	k.kid, k.source = j.Kid, "jwks"
	return k, nil
}

func b64Decode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
