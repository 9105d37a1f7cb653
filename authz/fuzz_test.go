package authz_test

import (
	. "github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"

	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzHandle feeds arbitrary paths, queries and bodies to the API: it must
// never panic, every failure must be one of the mapped errors (never a 500),
// and a failed call must not change the store.
func FuzzHandle(f *testing.F) {
	f.Add("PUT", "grants/g1", "", `{"subject":"alice","site":"hq","actions":["live"],"schedule":[{"days":["mon"],"from":"08:00","to":"18:00","tz":"+02:00"}]}`)
	f.Add("POST", "grants", "", `{"subject":"alice","device":"cam1","role":"site_viewer","not_after":"2026-12-01T00:00:00Z"}`)
	f.Add("PUT", "devices/cam9", "", `{"site":"hq","source":"rtsp://x/y","ptz":{"onvif_url":"http://x"}}`)
	f.Add("POST", "bulk-access", "", `{"subjects":["alice","bob"],"devices":["cam1"],"actions":["live"],"condition":"armed"}`)
	f.Add("GET", "check", "subject=alice&device=cam1&action=live&at=2026-01-01T00:00:00Z", "")
	f.Add("POST", "shares", "", `{"device":"cam1","owner":"alice","recipient_email":"bob@example.com","actions":["live"]}`)
	f.Add("PUT", "sites/lobby", "", `{"parent":"lobby"}`)
	f.Add("DELETE", "subjects/alice/temporary-access", "device=cam1", "")
	f.Add("GET", "audit", "after=1&limit=5", "")
	f.Fuzz(func(t *testing.T, method, path, query, body string) {
		h := newMemHarness(t)
		h.base()
		h.must(root, "PUT", "/grants/own", map[string]any{"subject": "alice", "device": "cam1", "role": "site_admin"})
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		for _, c := range []Caller{root, viewer("alice")} {
			rev := h.s.RevForTest()
			_, err := jsonapi.Handler{Service: h.s}.Handle(t.Context(), c, method, strings.Split(path, "/"), q, []byte(body))
			if err == nil {
				continue
			}
			var fe *FieldError
			if !errors.As(err, &fe) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrForbidden) &&
				!errors.Is(err, ErrConflict) && !errors.Is(err, ErrMethodNotAllowed) {
				t.Fatalf("%s %s %q: unmapped error %v", method, path, body, err)
			}
			if h.s.RevForTest() != rev {
				t.Fatalf("%s %s %q failed (%v) but changed the store", method, path, body, err)
			}
		}
	})
}
