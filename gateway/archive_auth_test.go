package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/links"
)

// archiveGet GETs /archive/cam1/{what} for [start, end) with tok and
// returns the status, the Content-Type and the body.
func archiveGet(t *testing.T, n *node, what, tok string, start, end time.Time) (int, string, string) {
	t.Helper()
	q := url.Values{"start": {start.UTC().Format(time.RFC3339Nano)}, "end": {end.UTC().Format(time.RFC3339Nano)}, "token": {tok}}
	code, hdr, body := httpGet(t, http.DefaultClient, "http://"+n.g.HTTPAddr().String()+"/archive/cam1/"+what+"?"+q.Encode())
	return code, hdr.Get("Content-Type"), body
}

// playlistIDs lists the segment ids a playlist serves, in order.
func playlistIDs(body string) []string {
	var ids []string
	for line := range strings.Lines(body) {
		if id, _, ok := strings.Cut(strings.TrimSpace(line), ".mp4?"); ok && !strings.HasPrefix(line, "#") {
			ids = append(ids, id)
		}
	}
	return ids
}

func segmentIDs(segs []archive.Segment) []string {
	ids := make([]string, len(segs))
	for i, sg := range segs {
		ids[i] = sg.ID()
	}
	return ids
}

// wantDownload checks a download's status (200 comes with an MP4).
func wantDownload(t *testing.T, n *node, what, tok string, start, end time.Time, want int) {
	t.Helper()
	code, ctype, body := archiveGet(t, n, "download", tok, start, end)
	if code != want || (want == 200 && ctype != "video/mp4") {
		t.Fatalf("download %s: %d %s %.200s, want %d", what, code, ctype, body, want)
	}
}

// TestArchiveFootageWithinPerSegment: a grant reaching back only 80 s gives
// the playlist exactly the segments recorded since then, and refuses any
// download that includes an older segment.
func TestArchiveFootageWithinPerSegment(t *testing.T) {
	n := startArchiveNode(t)
	root := authz.Caller{Root: true}
	mustHandle(t, n, root, "PUT", []string{"subjects", "alice"}, `{"kind":"user"}`)
	mustHandle(t, n, root, "PUT", []string{"grants", "a"}, `{"subject":"alice","device":"cam1","actions":["archive","download"],"footage_within":"80s"}`)
	start := time.Now().Add(-100 * time.Second).Truncate(time.Second)
	segs := recordFootage(t, n, "cam1", start, 40*time.Second)
	if len(segs) != 20 {
		t.Fatalf("%d segments recorded, want 20", len(segs))
	}
	end := segs[len(segs)-1].End()
	tok := viewerToken(t, "alice")

	before := time.Now()
	code, _, body := archiveGet(t, n, "index.m3u8", tok, start, end)
	after := time.Now()
	if code != 200 {
		t.Fatalf("playlist: %d %s", code, body)
	}
	got := playlistIDs(body)
	in, out := 0, 0
	for _, sg := range segs {
		served := slices.Contains(got, sg.ID())
		switch {
		case !sg.Start.Before(after.Add(-80 * time.Second)): // inside the look-back for the whole request
			if !served {
				t.Errorf("segment %s (within 80 s) is missing from the playlist", sg.ID())
			}
			in++
		case sg.Start.Before(before.Add(-80 * time.Second)): // older for the whole request
			if served {
				t.Errorf("segment %s (older than 80 s) is in the playlist", sg.ID())
			}
			out++
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("the footage does not straddle the boundary: %d allowed, %d refused", in, out)
	}

	last := len(segs) - 1
	wantDownload(t, n, "across the boundary", tok, start, end, 403)
	wantDownload(t, n, "of the oldest segments", tok, segs[0].Start, segs[2].End(), 403)
	wantDownload(t, n, "of the newest segments", tok, segs[last-2].Start, end, 200)
}

// TestArchiveTimeBoundGrants: validity windows and schedules decide every
// archive request as they decide live.
func TestArchiveTimeBoundGrants(t *testing.T) {
	n := startArchiveNode(t)
	start := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	segs := recordFootage(t, n, "cam1", start, 10*time.Second)
	end := segs[len(segs)-1].End()
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	// A one-hour window at least five hours away from now, every day.
	h := (now.Hour() + 6) % 24
	if h == 23 {
		h = 22
	}
	away := fmt.Sprintf(`"schedule":[{"days":["mon","tue","wed","thu","fri","sat","sun"],"from":"%02d:00","to":"%02d:00","tz":"UTC"}]`, h, h+1)
	for i, c := range []struct {
		name               string
		grant              string
		download, playlist int
	}{
		{"archive and download", `"actions":["archive","download"]`, 200, 200},
		{"archive only", `"actions":["archive"]`, 403, 200},
		{"download only", `"actions":["download"]`, 200, 403},
		{"inside its window", `"actions":["archive","download"],"not_before":"` + at(-time.Hour) + `","not_after":"` + at(time.Hour) + `"`, 200, 200},
		{"not yet valid", `"actions":["archive","download"],"not_before":"` + at(time.Hour) + `"`, 403, 403},
		{"outside its schedule", `"actions":["archive","download"],` + away, 403, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			sub := fmt.Sprintf("viewer%d", i)
			root := authz.Caller{Root: true}
			mustHandle(t, n, root, "PUT", []string{"subjects", sub}, `{"kind":"user"}`)
			mustHandle(t, n, root, "PUT", []string{"grants", "g-" + sub}, `{"subject":"`+sub+`","device":"cam1",`+c.grant+`}`)
			tok := viewerToken(t, sub)
			wantDownload(t, n, c.name, tok, start, end, c.download)
			code, _, body := archiveGet(t, n, "index.m3u8", tok, start, end)
			if code != c.playlist {
				t.Fatalf("playlist: %d %.200s, want %d", code, body, c.playlist)
			}
			if code == 200 && !slices.Equal(playlistIDs(body), segmentIDs(segs)) {
				t.Fatalf("playlist serves %v, want %v", playlistIDs(body), segmentIDs(segs))
			}
		})
	}
}

// TestArchiveLinkWindows: a share link serves only footage inside its
// footage window, only while its own window is open and it is enabled, and
// only the actions it carries.
func TestArchiveLinkWindows(t *testing.T) {
	n := startArchiveNode(t)
	start := time.Now().Add(-60 * time.Second).Truncate(time.Second)
	segs := recordFootage(t, n, "cam1", start, 20*time.Second)
	end := segs[len(segs)-1].End()
	mkLink := func(req links.CreateRequest) (id, tok string) {
		t.Helper()
		req.Device = "cam1"
		if req.NotAfter == nil {
			na := time.Now().Add(time.Hour)
			req.NotAfter = &na
		}
		c, err := n.g.links.Create(links.Creator{Root: true}, req)
		if err != nil {
			t.Fatal(err)
		}
		return c.ID, c.Token
	}
	from, to := segs[3].Start, segs[6].Start
	id, tok := mkLink(links.CreateRequest{Actions: []string{"archive", "download"}, FootageFrom: &from, FootageTo: &to})

	code, _, body := archiveGet(t, n, "index.m3u8", tok, start, end)
	if want := segmentIDs(segs[3:7]); code != 200 || !slices.Equal(playlistIDs(body), want) {
		t.Fatalf("playlist of a link with a footage window: %d %v, want %v", code, playlistIDs(body), want)
	}
	wantDownload(t, n, "across the footage window", tok, start, end, 403)
	wantDownload(t, n, "before the footage window", tok, segs[0].Start, segs[2].End(), 403)
	// Segments overlap by a few ms (audio runs ahead of the cut): a range
	// from segment 3's start also overlaps segment 2, outside the window.
	wantDownload(t, n, "from the footage window's start", tok, from, to, 403)
	wantDownload(t, n, "inside the footage window", tok, segs[2].End(), to, 200)

	if _, err := n.g.links.Disable(id); err != nil {
		t.Fatal(err)
	}
	wantDownload(t, n, "with a disabled link", tok, segs[2].End(), to, 403)
	if code, _, _ := archiveGet(t, n, "index.m3u8", tok, start, end); code != 403 {
		t.Fatalf("playlist of a disabled link: %d", code)
	}

	notBefore := time.Now().Add(time.Hour)
	notAfter := notBefore.Add(time.Hour)
	_, later := mkLink(links.CreateRequest{Actions: []string{"archive", "download"}, NotBefore: &notBefore, NotAfter: &notAfter})
	wantDownload(t, n, "with a link not yet open", later, start, end, 401)

	_, live := mkLink(links.CreateRequest{Actions: []string{"live"}})
	wantDownload(t, n, "with a live-only link", live, start, end, 403)
	if code, _, _ := archiveGet(t, n, "index.m3u8", live, start, end); code != 403 {
		t.Fatalf("playlist of a live-only link: %d", code)
	}
}

// revokingAuthorizer revokes access (revoke) just before the Grant's
// call number at (1-based) of each request: a change that lands while a
// request is being authorized.
type revokingAuthorizer struct {
	archive.RequestAuthorizer
	at     int
	revoke func()
}

func (r *revokingAuthorizer) Begin(ctx context.Context, tok, camera, action string) (archive.Grant, error) {
	g, err := r.RequestAuthorizer.Begin(ctx, tok, camera, action)
	if err != nil {
		return nil, err
	}
	return &revokingGrant{Grant: g, r: r}, nil
}

type revokingGrant struct {
	archive.Grant
	r     *revokingAuthorizer
	calls int
}

func (g *revokingGrant) Allow(footage time.Time) (archive.Viewer, error) {
	if g.calls++; g.calls == g.r.at {
		g.r.revoke()
	}
	return g.Grant.Allow(footage)
}

// TestArchiveRevokedMidRequest: the token is verified once per request, but
// each segment is decided against the permissions of that moment: a grant
// deleted (or a link disabled) while a request is being authorized refuses
// the segments after it.
func TestArchiveRevokedMidRequest(t *testing.T) {
	n := startArchiveNode(t)
	start := time.Now().Add(-30 * time.Second).Truncate(time.Second)
	segs := recordFootage(t, n, "cam1", start, 10*time.Second)
	end := segs[len(segs)-1].End()
	store := n.g.archive
	inner, ok := store.Authorizer.(archive.RequestAuthorizer)
	if !ok {
		t.Fatalf("the gateway's archive authorizer %T does not verify a token once per request", store.Authorizer)
	}
	root := authz.Caller{Root: true}
	principals := map[string]func(t *testing.T) (tok string, revoke func()){
		"viewer": func(t *testing.T) (string, func()) {
			sub := "v" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
			mustHandle(t, n, root, "PUT", []string{"subjects", sub}, `{"kind":"user"}`)
			mustHandle(t, n, root, "PUT", []string{"grants", "g-" + sub}, `{"subject":"`+sub+`","device":"cam1","actions":["archive","download"]}`)
			return viewerToken(t, sub), func() { mustHandle(t, n, root, "DELETE", []string{"grants", "g-" + sub}, "") }
		},
		"link": func(t *testing.T) (string, func()) {
			na := time.Now().Add(time.Hour)
			c, err := n.g.links.Create(links.Creator{Root: true}, links.CreateRequest{Device: "cam1", Actions: []string{"archive", "download"}, NotAfter: &na})
			if err != nil {
				t.Fatal(err)
			}
			return c.Token, func() {
				if _, err := n.g.links.Disable(c.ID); err != nil {
					t.Error(err)
				}
			}
		},
	}
	for _, kind := range []string{"viewer", "link"} {
		t.Run(kind+"/playlist", func(t *testing.T) {
			tok, revoke := principals[kind](t)
			// Segments 0 and 1 are decided before the revoke, the rest after.
			store.Authorizer = &revokingAuthorizer{RequestAuthorizer: inner, at: 3, revoke: revoke}
			defer func() { store.Authorizer = inner }()
			pl, err := store.Playlist(context.Background(), tok, "cam1", start, end)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := playlistIDs(string(pl)), segmentIDs(segs[:2]); !slices.Equal(got, want) {
				t.Fatalf("playlist serves %v, want %v", got, want)
			}
		})
		t.Run(kind+"/download", func(t *testing.T) {
			tok, revoke := principals[kind](t)
			// The range's start and end and segment 0 pass; segment 1 is refused.
			store.Authorizer = &revokingAuthorizer{RequestAuthorizer: inner, at: 4, revoke: revoke}
			defer func() { store.Authorizer = inner }()
			d, err := store.PrepareDownload(context.Background(), tok, "cam1", start, end)
			if err == nil {
				d.Close()
			}
			if !errors.Is(err, archive.ErrForbidden) || !strings.Contains(err.Error(), segs[1].Start.UTC().Format(time.RFC3339)) {
				t.Fatalf("download revoked at segment 1: %v", err)
			}
		})
	}
}
