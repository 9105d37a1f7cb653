package archive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// countingAuth is a RequestAuthorizer over testAuth that counts how a
// request used it.
type countingAuth struct {
	testAuth
	begins, allows, authorizes int
}

func (a *countingAuth) Authorize(ctx context.Context, token, camera, action string, footage time.Time) (Viewer, error) {
	a.authorizes++
	return a.testAuth.Authorize(ctx, token, camera, action, footage)
}

func (a *countingAuth) Begin(_ context.Context, token, camera, action string) (Grant, error) {
	a.begins++
	if camera == "unknown" {
		return nil, ErrUnknownCamera
	}
	if _, ok := a.allow[token]; !ok {
		return nil, ErrUnauthenticated
	}
	return countingGrant{a: a, token: token, camera: camera, action: action}, nil
}

type countingGrant struct {
	a                     *countingAuth
	token, camera, action string
}

func (g countingGrant) Allow(footage time.Time) (Viewer, error) {
	g.a.allows++
	return g.a.testAuth.Authorize(context.Background(), g.token, g.camera, g.action, footage)
}

// TestRequestAuthorizer: with a RequestAuthorizer, a download and a
// playlist begin once and decide every footage time through the Grant: a
// refused segment still refuses the download and is left out of the
// playlist.
func TestRequestAuthorizer(t *testing.T) {
	s := newTestStore(t, t.TempDir(), &fakeClock{now: t0.Add(time.Hour)})
	defer s.Close()
	recordSynthetic(t, s, "cam1", t0, 10*time.Second, 1000)
	segs := s.Segments("cam1", t0, t0.Add(time.Minute))
	if len(segs) < 4 {
		t.Fatalf("%d segments", len(segs))
	}
	a := &countingAuth{testAuth: *s.Authorizer.(*testAuth)}
	s.Authorizer = a
	ctx := context.Background()
	end := segs[len(segs)-1].End()
	reset := func() { a.begins, a.allows, a.authorizes = 0, 0, 0 }

	d, err := s.PrepareDownload(ctx, "admin", "cam1", t0, end)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if a.begins != 1 || a.allows != 2+len(segs) || a.authorizes != 0 {
		t.Fatalf("download of %d segments: %d Begin, %d Allow, %d Authorize; want 1, %d, 0",
			len(segs), a.begins, a.allows, a.authorizes, 2+len(segs))
	}

	// Footage before segment 2 is refused from now on.
	a.notBefore = segs[2].Start
	reset()
	if _, err := s.PrepareDownload(ctx, "admin", "cam1", t0, end); !errors.Is(err, ErrForbidden) {
		t.Fatalf("download including refused footage: %v", err)
	}
	if _, err := s.PrepareDownload(ctx, "admin", "cam1", segs[1].End(), end); err != nil {
		t.Fatalf("download of the allowed footage: %v", err)
	}
	pl, err := s.Playlist(ctx, "admin", "cam1", t0, end)
	if err != nil {
		t.Fatal(err)
	}
	for i, sg := range segs {
		if got := strings.Contains(string(pl), sg.ID()+".mp4?a="); got != (i >= 2) {
			t.Fatalf("segment %d in the playlist: %v\n%s", i, got, pl)
		}
	}
	if a.begins != 3 || a.authorizes != 0 {
		t.Fatalf("three requests: %d Begin, %d Authorize", a.begins, a.authorizes)
	}

	// What Begin refuses is the request's answer, as Authorize's was.
	for _, c := range []struct {
		token, camera string
		want          error
	}{
		{"nobody", "cam1", ErrUnauthenticated},
		{"admin", "unknown", ErrUnknownCamera},
		{"", "cam1", ErrUnauthenticated},
	} {
		if _, err := s.PrepareDownload(ctx, c.token, c.camera, t0, end); !errors.Is(err, c.want) {
			t.Fatalf("download with %q on %s: %v, want %v", c.token, c.camera, err, c.want)
		}
		if _, err := s.Playlist(ctx, c.token, c.camera, t0, end); !errors.Is(err, c.want) {
			t.Fatalf("playlist with %q on %s: %v, want %v", c.token, c.camera, err, c.want)
		}
	}
}
