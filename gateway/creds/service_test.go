package creds

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/auth"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"github.com/camgate/camgate/authz"
)

func newService(t testing.TB, dir string) *Service {
	t.Helper()
	s := &Service{DataDir: dir}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func mustCreate(t testing.TB, s *Service, req CreateRequest) Created {
	t.Helper()
	c, err := s.create(context.Background(), req, "root")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// digestFor answers a challenge the way an RTSP client does, with
// gortsplib's client-side Sender as the oracle.
func digestFor(t testing.TB, user, pass, realm, nonce, method, rawURL string) Digest {
	t.Helper()
	alg := headers.AuthAlgorithmMD5
	se := auth.Sender{WWWAuth: headers.Authenticate{Method: headers.AuthMethodDigest, Realm: realm, Nonce: nonce, Algorithm: &alg}.Marshal(), User: user, Pass: pass}
	if err := se.Initialize(); err != nil {
		t.Fatal(err)
	}
	u, err := base.ParseURL(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	req := &base.Request{Method: base.Method(method), URL: u, Header: base.Header{}}
	se.AddAuthorization(req)
	var a headers.Authorization
	if err := a.Unmarshal(req.Header["Authorization"]); err != nil {
		t.Fatal(err)
	}
	return Digest{Username: a.Username, Realm: a.Realm, Nonce: a.Nonce, URI: a.URI, Response: a.Response, Method: method, ExpectedNonce: nonce}
}

func TestCredentialShape(t *testing.T) {
	s := newService(t, t.TempDir())
	c := mustCreate(t, s, CreateRequest{Subject: "alice"})
	if !LooksLikeUsername(c.Username) || !LooksLikePassword(c.Password) || c.ID != c.Username {
		t.Fatalf("credential %q / %q does not have the documented shape", c.Username, c.Password)
	}
	if n := len(c.Username) + 1 + len(c.Password); n > 40 {
		t.Fatalf("user:password is %d bytes; it must stay far below ffmpeg's 127", n)
	}
	stored, err := s.Store.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(s.DataDir, "stream-credentials.db"))
	for _, secret := range []string{c.Password, HA1(c.Username, DefaultRealm, c.Password)} {
		if containsString(raw, secret) || containsString(stored.SealedHA1, secret) {
			t.Fatalf("the store holds a secret in the clear")
		}
	}
}

func containsString(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func TestVerifyBasicAndDigest(t *testing.T) {
	s := newService(t, t.TempDir())
	c := mustCreate(t, s, CreateRequest{Subject: "alice"})
	if r, err := s.VerifyBasic(c.Username, c.Password); err != nil || r.Subject != "alice" || r.ID != c.ID {
		t.Fatalf("VerifyBasic = %+v, %v", r, err)
	}
	const nonce = "0123456789abcdef0123456789abcdef"
	url := "rtsp://127.0.0.1:8554/cam1"
	d := digestFor(t, c.Username, c.Password, DefaultRealm, nonce, "DESCRIBE", url)
	if r, err := s.VerifyDigest(d); err != nil || r.Subject != "alice" {
		t.Fatalf("VerifyDigest = %+v, %v", r, err)
	}
	bad := []struct {
		name string
		d    Digest
	}{
		{"wrong password", digestFor(t, c.Username, c.Password+"x", DefaultRealm, nonce, "DESCRIBE", url)},
		{"other realm", digestFor(t, c.Username, c.Password, "ipcam", nonce, "DESCRIBE", url)},
		{"other nonce", func() Digest { x := d; x.ExpectedNonce = "ffff"; return x }()},
		{"no nonce issued", func() Digest { x := d; x.Nonce, x.ExpectedNonce = "", ""; return x }()},
		{"other method", func() Digest { x := d; x.Method = "PLAY"; return x }()},
		{"unknown user", digestFor(t, "cgzzzz2345", c.Password, DefaultRealm, nonce, "DESCRIBE", url)},
	}
	for _, b := range bad {
		if _, err := s.VerifyDigest(b.d); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s: %v, want ErrBadCredentials", b.name, err)
		}
	}
	for _, pw := range []string{"", c.Password[:19], c.Password + "A", "x"} {
		if _, err := s.VerifyBasic(c.Username, pw); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Basic password %q: %v", pw, err)
		}
	}
}

func TestRevokeAndExpiry(t *testing.T) {
	s := newService(t, t.TempDir())
	var revoked []string
	s.OnRevoke = func(id string) { revoked = append(revoked, id) }
	now := time.Now()
	s.Now = func() time.Time { return now }
	end := now.Add(time.Hour)
	c := mustCreate(t, s, CreateRequest{Link: "l1", NotAfter: &end})
	if r, err := s.VerifyBasic(c.Username, c.Password); err != nil || r.Link != "l1" || !r.NotAfter.Equal(end.UTC()) {
		t.Fatalf("VerifyBasic = %+v, %v", r, err)
	}
	now = end
	if _, err := s.VerifyBasic(c.Username, c.Password); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after not_after: %v", err)
	}
	now = end.Add(-time.Minute)
	if err := s.Revoke(context.Background(), c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.VerifyBasic(c.Username, c.Password); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("after revoke: %v", err)
	}
	if _, err := s.Live(c.ID, now); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("Live after revoke: %v", err)
	}
	if len(revoked) != 1 || revoked[0] != c.ID {
		t.Fatalf("OnRevoke got %v", revoked)
	}
	if err := s.Revoke(context.Background(), c.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
}

// A node whose key differs (a cluster node given another key file) still
// verifies Basic and refuses Digest.
func TestOtherNodeKey(t *testing.T) {
	dir := t.TempDir()
	a := newService(t, dir)
	c := mustCreate(t, a, CreateRequest{Subject: "alice"})
	b := &Service{Store: a.Store, Key: make([]byte, 32)}
	if err := b.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.VerifyBasic(c.Username, c.Password); err != nil {
		t.Fatalf("Basic on another key: %v", err)
	}
	d := digestFor(t, c.Username, c.Password, DefaultRealm, "n1", "DESCRIBE", "rtsp://h/cam")
	if _, err := b.VerifyDigest(d); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("Digest on another key: %v", err)
	}
	// The key file is reused on restart, so Digest survives it.
	k1, err := LoadOrCreateKey(filepath.Join(dir, "stream-credentials.key"))
	if err != nil || string(k1) != string(a.Key) {
		t.Fatalf("key not kept: %v", err)
	}
}

func TestLastUsedIsWrittenBack(t *testing.T) {
	s := newService(t, t.TempDir())
	c := mustCreate(t, s, CreateRequest{Subject: "alice"})
	if _, err := s.VerifyBasic(c.Username, c.Password); err != nil {
		t.Fatal(err)
	}
	l, err := s.list(context.Background(), func(*Credential) bool { return true })
	if err != nil || len(l) != 1 || l[0].LastUsed.IsZero() {
		t.Fatalf("list = %+v, %v; want a last_used", l, err)
	}
}

// flakyStore fails every Get while down is set (an unreachable Redis).
type flakyStore struct {
	Store
	down bool
}

func (f *flakyStore) Get(ctx context.Context, id string) (Credential, error) {
	if f.down {
		return Credential{}, errors.New("connection refused")
	}
	return f.Store.Get(ctx, id)
}

// TestStoreOutageGrace: while the store cannot be read, a cached credential
// keeps verifying for OutageGrace past its CacheTTL, then the answer is a
// store error (503 upstream), not a bad credential.
func TestStoreOutageGrace(t *testing.T) {
	dir := t.TempDir()
	bolt, err := OpenBoltStore(filepath.Join(dir, "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	st := &flakyStore{Store: bolt}
	now := time.Now()
	s := &Service{Store: st, Key: make([]byte, 32), CacheTTL: time.Minute, OutageGrace: 5 * time.Minute, Now: func() time.Time { return now }}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := mustCreate(t, s, CreateRequest{Subject: "alice"})
	if _, err := s.VerifyBasic(c.Username, c.Password); err != nil {
		t.Fatal(err)
	}
	st.down = true
	now = now.Add(4 * time.Minute)
	if _, err := s.VerifyBasic(c.Username, c.Password); err != nil {
		t.Fatalf("within the grace: %v", err)
	}
	now = now.Add(3 * time.Minute)
	if _, err := s.VerifyBasic(c.Username, c.Password); err == nil || errors.Is(err, ErrBadCredentials) {
		t.Fatalf("past the grace: %v, want a store error", err)
	}
	st.down = false
	if _, err := s.VerifyBasic(c.Username, c.Password); err != nil {
		t.Fatalf("store back: %v", err)
	}
}

// TestCredentialsPerOwnerAreBounded: a viewer creates its own credentials,
// so one subject (or link) holds at most MaxPerOwner; the refusal is a
// conflict that stores nothing, and revoking one makes room.
func TestCredentialsPerOwnerAreBounded(t *testing.T) {
	s := &Service{DataDir: t.TempDir(), MaxPerOwner: 2}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	first := mustCreate(t, s, CreateRequest{Subject: "alice"})
	mustCreate(t, s, CreateRequest{Subject: "alice"})
	mustCreate(t, s, CreateRequest{Subject: "bob"})
	mustCreate(t, s, CreateRequest{Link: "l1"})
	if _, err := s.create(context.Background(), CreateRequest{Subject: "alice"}, "subject:alice"); !errors.Is(err, authz.ErrConflict) {
		t.Fatalf("a third credential for alice: %v, want a conflict", err)
	}
	if all, _ := s.Store.List(context.Background()); len(all) != 4 {
		t.Fatalf("the refused create stored something: %d credentials", len(all))
	}
	if err := s.Revoke(context.Background(), first.ID); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, CreateRequest{Subject: "alice"})
}
