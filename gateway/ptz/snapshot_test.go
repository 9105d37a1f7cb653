package ptz

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// fakeJPEG is what the fake camera's snapshot service answers.
var fakeJPEG = []byte{0xff, 0xd8, 0xff, 0xe0, 'c', 'a', 'm', 0xff, 0xd9}

func (d *fakeDevice) snapshotAt() string {
	if d.snapshotURI != "" {
		return d.snapshotURI
	}
	return d.srv.URL + "/snapshot.jpg"
}

// serveSnapshot answers GET /snapshot.jpg behind HTTP Digest (qop=auth,
// as most cameras) or Basic, checking the answer with its own password.
func (d *fakeDevice) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	const realm, nonce = "IP Camera", "abc123nonce"
	auth := r.Header.Get("Authorization")
	ok := false
	if d.snapshotBasic {
		ok = auth == "Basic "+base64.StdEncoding.EncodeToString([]byte(d.username+":"+d.password))
	} else if c, parsed := parseChallenge(auth); parsed && c.scheme == "digest" {
		md := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
		p := c.params
		ha1 := md(d.username + ":" + realm + ":" + d.password)
		ha2 := md(r.Method + ":" + r.URL.RequestURI())
		ok = p["username"] == d.username && p["uri"] == r.URL.RequestURI() && p["nonce"] == nonce && p["qop"] == "auth" && p["opaque"] == "op\"q" &&
			p["response"] == md(ha1+":"+nonce+":"+p["nc"]+":"+p["cnonce"]+":auth:"+ha2)
	}
	if !ok {
		if d.snapshotBasic {
			w.Header().Set("WWW-Authenticate", `Basic realm="cam"`)
		} else {
			w.Header().Add("WWW-Authenticate", `Basic realm="`+realm+`"`)
			w.Header().Add("WWW-Authenticate", `Digest realm="`+realm+`", qop="auth,auth-int", nonce="`+nonce+`", opaque="op\"q"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d.mu.Lock()
	d.snapshots++
	d.mu.Unlock()
	w.Header().Set("Content-Type", "image/jpeg")
	_, _ = w.Write(fakeJPEG)
}

func (d *fakeDevice) snapshotCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snapshots
}

func TestSnapshot(t *testing.T) {
	for _, c := range []struct {
		name      string
		configure func(*fakeDevice)
		profile   string
	}{
		{"media, digest", nil, "main_ptz"},
		{"media, basic", func(d *fakeDevice) { d.snapshotBasic = true }, "main_ptz"},
		{"media2 only", func(d *fakeDevice) { d.media20Only = true }, "m2"},
		{"ONVIF 1.x (GetCapabilities)", func(d *fakeDevice) { d.getServicesFault = true }, "main_ptz"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := newFakeDevice(t, c.configure)
			ctrl := newTestController(t, newTestClock(), nil)
			for range 2 {
				b, err := ctrl.Snapshot(context.Background(), d.camera())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, fakeJPEG) {
					t.Fatalf("got %q", b)
				}
			}
			ops := d.accepted()
			if len(ops) != 1 || ops[0].Op != "GetSnapshotUri" || ops[0].Profile != c.profile {
				t.Fatalf("the URI should be asked once, for profile %s: %+v", c.profile, ops)
			}
			if d.snapshotCount() != 2 {
				t.Fatalf("%d snapshots served", d.snapshotCount())
			}
		})
	}
}

// A camera whose snapshot URI points at another host does not get the
// device's credentials sent there; a URI that is not http(s) is refused.
func TestSnapshotURIChecked(t *testing.T) {
	other := newFakeDevice(t, nil)
	d := newFakeDevice(t, func(d *fakeDevice) { d.snapshotURI = other.srv.URL + "/snapshot.jpg" })
	ctrl := newTestController(t, newTestClock(), nil)
	_, err := ctrl.Snapshot(context.Background(), d.camera())
	var ce *CameraError
	if !errors.As(err, &ce) || !strings.Contains(ce.Reason, "401") {
		t.Fatalf("err = %v, want the other host's 401 (no credentials sent)", err)
	}
	if other.snapshotCount() != 0 {
		t.Fatal("credentials were sent to another host")
	}
	bad := newFakeDevice(t, func(d *fakeDevice) { d.snapshotURI = "file:///etc/passwd" })
	if _, err := ctrl.Snapshot(context.Background(), bad.camera()); !errors.As(err, &ce) || !strings.Contains(ce.Reason, "not http(s)") {
		t.Fatalf("file URI: %v", err)
	}
}

// Digest answers follow the challenge: MD5 or SHA-256, qop=auth, opaque
// echoed; a challenge offering only auth-int or an unknown algorithm gets
// Basic when offered, else nothing.
func TestAuthorization(t *testing.T) {
	a := authorization([]string{`Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth"`}, "u", "p", "GET", "/s.jpg")
	if !strings.HasPrefix(a, "Digest ") || !strings.Contains(a, "algorithm=SHA-256") || !strings.Contains(a, "qop=auth") {
		t.Fatalf("sha-256: %s", a)
	}
	if a := authorization([]string{`Digest realm="r", nonce="n", qop="auth-int"`, `Basic realm="r"`}, "u", "p", "GET", "/"); !strings.HasPrefix(a, "Basic ") {
		t.Fatalf("auth-int only: %s", a)
	}
	if a := authorization([]string{`Digest realm="r", nonce="n", algorithm=MD5-sess`}, "u", "p", "GET", "/"); a != "" {
		t.Fatalf("unknown algorithm: %s", a)
	}
	if a := authorization([]string{`Digest realm="a\"b` + "\r\n" + `X: y", nonce="n"`}, "u", "p", "GET", "/"); strings.ContainsAny(a, "\r\n") {
		t.Fatalf("header injection: %q", a)
	}
}
