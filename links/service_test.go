package links_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/camgate/camgate/gateway/httpapi"
	"github.com/camgate/camgate/links"
)

func TestCreateVerifyDecide(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(2*time.Hour))
	if c.ID == "" || c.URL != "https://cams.example.com/s/"+c.Token {
		t.Fatalf("Created = %+v", c)
	}
	claims, err := e.svc.Verify(c.Token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if claims.LinkID != c.ID || claims.Device != "cam1" || !claims.NotAfter.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("claims = %+v", claims)
	}
	// The token's header and payload are what other verifiers rely on.
	tok, _, err := jwt.NewParser().ParseUnverified(c.Token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	mc := tok.Claims.(jwt.MapClaims)
	if tok.Header["alg"] != "EdDSA" || tok.Header["kid"] != e.svc.KeyIDs()[0] || mc["jti"] != c.ID ||
		mc["sub"] != "link:"+c.ID || mc["aud"] == nil || !links.IsLinkToken(c.Token) {
		t.Fatalf("header %v claims %v", tok.Header, mc)
	}
	now := t0.Add(time.Minute)
	cases := []struct {
		device, action string
		footage        *time.Time
		allowed        bool
		reason         string
	}{
		{"cam1", "live", nil, true, links.ReasonAllowed},
		{"cam1", "sound", nil, true, links.ReasonAllowed},
		{"cam1", "archive", nil, false, links.ReasonAction},
		{"cam1", "ptz", nil, false, links.ReasonAction},
		{"cam2", "live", nil, false, links.ReasonOtherDevice},
	}
	for _, tc := range cases {
		d := e.svc.Decide(claims.LinkID, tc.device, tc.action, now, tc.footage)
		if d.Allowed != tc.allowed || d.Reason != tc.reason {
			t.Errorf("Decide(%s, %s) = %+v, want allowed=%v reason %q", tc.device, tc.action, d, tc.allowed, tc.reason)
		}
		if d.Allowed && !d.ValidUntil.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("ValidUntil = %v, want the link's not_after", d.ValidUntil)
		}
	}
	if d := e.svc.Decide("nosuchlink", "cam1", "live", now, nil); d.Allowed || d.Reason != links.ReasonUnknown {
		t.Errorf("unknown link: %+v", d)
	}
}

func TestFootageWindow(t *testing.T) {
	e := newEnv(t)
	from, to := t0.Add(-48*time.Hour), t0.Add(-24*time.Hour)
	c := e.create(t, t0, t0.Add(time.Hour), func(r *links.CreateRequest) {
		r.Actions = []string{"archive"}
		r.FootageFrom, r.FootageTo = &from, &to
	})
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{from.Add(-time.Second), false}, {from, true}, {to, true}, {to.Add(time.Second), false},
	} {
		d := e.svc.Decide(c.ID, "cam1", "archive", t0, tp(tc.at))
		if d.Allowed != tc.want {
			t.Errorf("footage %v: %+v, want allowed=%v", tc.at, d, tc.want)
		}
	}
	if d := e.svc.Decide(c.ID, "cam1", "live", t0, nil); d.Allowed {
		t.Error("an archive-only link allows live")
	}
}

func TestTimeWindow(t *testing.T) {
	e := newEnv(t)
	from, until := t0.Add(time.Hour), t0.Add(3*time.Hour)
	c := e.create(t, from, until)
	steps := []struct {
		at     time.Time
		err    error
		reason string
	}{
		{t0, links.ErrNotYetValid, links.ReasonNotYetActive},
		{from.Add(-time.Minute), links.ErrNotYetValid, links.ReasonNotYetActive},
		{from, nil, links.ReasonAllowed},
		{until.Add(-time.Second), nil, links.ReasonAllowed},
		{until.Add(time.Minute), links.ErrExpired, links.ReasonExpired},
	}
	for _, st := range steps {
		e.clock.Set(st.at)
		for pass := range 2 { // the second Verify is served from the cache
			_, err := e.svc.Verify(c.Token)
			if !errors.Is(err, st.err) || (st.err == nil && err != nil) {
				t.Errorf("at %v pass %d: Verify = %v, want %v", st.at, pass, err, st.err)
			}
		}
		if d := e.svc.Decide(c.ID, "cam1", "live", st.at, nil); d.Reason != st.reason {
			t.Errorf("at %v: Decide = %+v, want %q", st.at, d, st.reason)
		}
	}
	if d := e.svc.Decide(c.ID, "cam1", "live", t0, nil); !d.ValidUntil.Equal(from) {
		t.Errorf("before not_before, ValidUntil = %v, want %v (when it opens)", d.ValidUntil, from)
	}
}

// forge signs claims with any method and key and sets kid.
func forge(t *testing.T, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTamperedTokensRefused(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour))
	if _, err := e.svc.Verify(c.Token); err != nil { // now cached: tampering must not hit the cache
		t.Fatal(err)
	}
	kid := e.svc.KeyIDs()[0]
	var jwks struct {
		Keys []struct{ X string }
	}
	if err := json.Unmarshal(e.svc.JWKS(), &jwks); err != nil {
		t.Fatal(err)
	}
	pub, _ := base64.RawURLEncoding.DecodeString(jwks.Keys[0].X)
	parts := strings.Split(c.Token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	otherPayload := strings.Replace(string(payload), `"cam":"cam1"`, `"cam":"cam2"`, 1)
	if otherPayload == string(payload) {
		t.Fatalf("payload has no cam claim: %s", payload)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[0] ^= 1
	claims := jwt.MapClaims{"jti": c.ID, "sub": "link:" + c.ID, "aud": links.Audience, "cam": "cam1",
		"nbf": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	_, attacker, _ := ed25519.GenerateKey(rand.Reader)

	cases := map[string]struct {
		tok  string
		want error
	}{
		"payload changed":         {parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(otherPayload)) + "." + parts[2], links.ErrInvalid},
		"signature changed":       {parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig), links.ErrInvalid},
		"signature removed":       {parts[0] + "." + parts[1] + ".", links.ErrInvalid},
		"alg none":                {forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claims), links.ErrInvalid},
		"HS256 with public key":   {forge(t, jwt.SigningMethodHS256, pub, kid, claims), links.ErrInvalid},
		"HS256 with JWK x":        {forge(t, jwt.SigningMethodHS256, []byte(jwks.Keys[0].X), kid, claims), links.ErrInvalid},
		"other key, our kid":      {forge(t, jwt.SigningMethodEdDSA, attacker, kid, claims), links.ErrInvalid},
		"other key, unknown kid":  {forge(t, jwt.SigningMethodEdDSA, attacker, "made-up", claims), links.ErrUnknownKey},
		"other key, no kid":       {forge(t, jwt.SigningMethodEdDSA, attacker, "", claims), links.ErrInvalid},
		"garbage":                 {"not.a.jwt", links.ErrInvalid},
		"empty":                   {"", links.ErrInvalid},
		"oversized":               {strings.Repeat("a", links.MaxTokenBytes+1), links.ErrInvalid},
		"token with extra suffix": {c.Token + "x", links.ErrInvalid},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := e.svc.Verify(tc.tok); !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDisableEnableDelete(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour))
	live := func() links.Decision { return e.svc.Decide(c.ID, "cam1", "live", t0, nil) }
	if !live().Allowed {
		t.Fatal("new link not allowed")
	}
	expectChange := func(what string) {
		t.Helper()
		select {
		case id := <-e.world.changeCh:
			if id != c.ID {
				t.Fatalf("%s: OnChange(%q), want %q", what, id, c.ID)
			}
		default:
			t.Fatalf("%s: OnChange was not called", what)
		}
	}
	v, err := e.svc.Disable(c.ID)
	if err != nil || v.Enabled {
		t.Fatalf("Disable = %+v, %v", v, err)
	}
	expectChange("disable")
	if d := live(); d.Allowed || d.Reason != links.ReasonDisabled {
		t.Fatalf("after disable: %+v", d)
	}
	if _, err := e.svc.Verify(c.Token); err != nil {
		t.Fatalf("a disabled link's token still verifies (the registry says no): %v", err)
	}
	if _, err := e.svc.Enable(c.ID); err != nil {
		t.Fatal(err)
	}
	expectChange("enable")
	if d := live(); !d.Allowed {
		t.Fatalf("after enable: %+v", d)
	}
	if err := e.svc.Delete(c.ID); err != nil {
		t.Fatal(err)
	}
	expectChange("delete")
	if d := live(); d.Allowed || d.Reason != links.ReasonDeleted {
		t.Fatalf("after delete: %+v", d)
	}
	if _, err := e.svc.Enable(c.ID); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("Enable after delete = %v, want ErrNotFound (delete is final)", err)
	}
	if _, err := e.svc.Get(root, c.ID, false); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("Get after delete = %v", err)
	}
	if l, _ := e.svc.List(root); len(l) != 0 {
		t.Fatalf("List after delete: %+v", l)
	}
	// After a restart the link is still deleted, not unknown.
	e.svc.Close()
	e.svc = e.start(t)
	if d := live(); d.Reason != links.ReasonDeleted {
		t.Fatalf("after restart: %+v", d)
	}
}

func TestCreatorLosesShare(t *testing.T) {
	e := newEnv(t)
	bob := links.Creator{Subject: "bob"}
	req := links.CreateRequest{Device: "cam1", NotAfter: tp(t0.Add(time.Hour))}
	if _, err := e.svc.Create(bob, req); !errors.Is(err, links.ErrForbidden) {
		t.Fatalf("Create without share = %v, want ErrForbidden", err)
	}
	e.world.allowShare("bob", "cam1", true)
	c, err := e.svc.Create(bob, req)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.svc.Decide(c.ID, "cam1", "live", t0, nil); !d.Allowed {
		t.Fatalf("bob's link: %+v", d)
	}
	e.world.allowShare("bob", "cam1", false)
	if d := e.svc.Decide(c.ID, "cam1", "live", t0, nil); d.Allowed || d.Reason != links.ReasonCreatorLost {
		t.Fatalf("after bob lost share: %+v", d)
	}
	if ids := e.svc.LinksByCreator("bob"); len(ids) != 1 || ids[0] != c.ID {
		t.Fatalf("LinksByCreator(bob) = %v", ids)
	}
	// A link cannot give more than its creator has.
	e.world.allowShare("bob", "cam1", true)
	e.world.mu.Lock()
	e.world.lacking["bob/cam1/archive"] = true
	e.world.mu.Unlock()
	_, err = e.svc.Create(bob, links.CreateRequest{Device: "cam1", Actions: []string{"live", "archive"}, NotAfter: tp(t0.Add(time.Hour))})
	if !errors.Is(err, links.ErrForbidden) || !strings.Contains(err.Error(), "archive") {
		t.Fatalf("Create with an action bob lacks = %v", err)
	}
	// A viewer sees and manages only its own links.
	if _, err := e.svc.Get(links.Creator{Subject: "eve"}, c.ID, false); !errors.Is(err, links.ErrNotFound) {
		t.Fatalf("eve reading bob's link: %v", err)
	}
	if l, _ := e.svc.List(links.Creator{Subject: "eve"}); len(l) != 0 {
		t.Fatalf("eve lists %d links", len(l))
	}
	if l, _ := e.svc.List(bob); len(l) != 1 || l[0].Creator != "bob" {
		t.Fatalf("bob lists %+v", l)
	}
}

func TestMaxViewers(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour), func(r *links.CreateRequest) { r.MaxViewers = 2 })
	r1, err := e.svc.AcquireViewer(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.svc.AcquireViewer(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AcquireViewer(c.ID); !errors.Is(err, links.ErrTooManyViewers) {
		t.Fatalf("third viewer = %v, want ErrTooManyViewers", err)
	}
	if status, _ := httpapi.StatusOf(links.ErrTooManyViewers); status != 429 {
		t.Fatal("ErrTooManyViewers is not 429")
	}
	r1()
	r1() // idempotent: must not free a second slot
	r3, err := e.svc.AcquireViewer(c.ID)
	if err != nil {
		t.Fatalf("after one left: %v", err)
	}
	if _, err := e.svc.AcquireViewer(c.ID); !errors.Is(err, links.ErrTooManyViewers) {
		t.Fatalf("double release freed an extra slot: %v", err)
	}
	r2()
	r3()
	if n := e.svc.Viewers(c.ID); n != 0 {
		t.Fatalf("viewers after all left = %d", n)
	}
	unlimited := e.create(t, t0, t0.Add(time.Hour))
	for range 50 {
		if _, err := e.svc.AcquireViewer(unlimited.ID); err != nil {
			t.Fatalf("max_viewers 0 is unlimited: %v", err)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t)
	end := tp(t0.Add(time.Hour))
	cases := []struct {
		name  string
		req   links.CreateRequest
		field string
	}{
		{"no device", links.CreateRequest{NotAfter: end}, "device"},
		{"unknown device", links.CreateRequest{Device: "cam9", NotAfter: end}, "device"},
		{"no end", links.CreateRequest{Device: "cam1"}, "not_after"},
		{"end in the past", links.CreateRequest{Device: "cam1", NotAfter: tp(t0.Add(-time.Minute))}, "not_after"},
		{"end before start", links.CreateRequest{Device: "cam1", NotBefore: tp(t0.Add(2 * time.Hour)), NotAfter: end}, "not_after"},
		{"over a year", links.CreateRequest{Device: "cam1", NotAfter: tp(t0.Add(400 * 24 * time.Hour))}, "not_after"},
		{"bad action", links.CreateRequest{Device: "cam1", Actions: []string{"share"}, NotAfter: end}, "actions"},
		{"sound alone", links.CreateRequest{Device: "cam1", Actions: []string{"sound"}, NotAfter: end}, "actions"},
		{"footage without archive", links.CreateRequest{Device: "cam1", FootageFrom: tp(t0), NotAfter: end}, "footage_from"},
		{"footage reversed", links.CreateRequest{Device: "cam1", Actions: []string{"archive"}, FootageFrom: tp(t0), FootageTo: tp(t0.Add(-time.Hour)), NotAfter: end}, "footage_to"},
		{"negative max_viewers", links.CreateRequest{Device: "cam1", MaxViewers: -1, NotAfter: end}, "max_viewers"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Create(root, tc.req)
			var fe *links.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("Create = %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	if l, _ := e.svc.List(root); len(l) != 0 {
		t.Fatalf("a refused create stored %d links", len(l))
	}
}

func TestSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour))
	kids := e.svc.KeyIDs()
	e.svc.Close()
	e.svc = e.start(t)
	if got := e.svc.KeyIDs(); len(got) != 1 || got[0] != kids[0] {
		t.Fatalf("keys after restart %v, want %v (no new key when one exists)", got, kids)
	}
	if _, err := e.svc.Verify(c.Token); err != nil {
		t.Fatalf("Verify after restart: %v", err)
	}
	if d := e.svc.Decide(c.ID, "cam1", "live", t0, nil); !d.Allowed {
		t.Fatalf("Decide after restart: %+v", d)
	}
}

// Deleted links are kept (refused as deleted) until they expire, then
// purged by the sweep; an unknown link id remembered as absent does not
// trip the sweep.
func TestSweepPurgesExpiredTombstones(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, t0, t0.Add(time.Hour))
	if err := e.svc.Delete(c.ID); err != nil {
		t.Fatal(err)
	}
	e.svc.Decide("never-existed", "cam1", "live", t0, nil)
	if err := e.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	if d := e.svc.Decide(c.ID, "cam1", "live", t0, nil); d.Reason != links.ReasonDeleted {
		t.Fatalf("before expiry: %+v", d)
	}
	e.clock.Set(t0.Add(2 * time.Hour))
	if err := e.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	e.svc.Close()
	e.svc = e.start(t)
	if d := e.svc.Decide(c.ID, "cam1", "live", t0.Add(2*time.Hour), nil); d.Reason != links.ReasonUnknown {
		t.Fatalf("after the sweep and a restart the tombstone should be gone: %+v", d)
	}
}
