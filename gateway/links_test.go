package gateway

import (
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"

	"github.com/camgate/camgate/gateway/config"
)

// waitClientEnded waits for a playing client's session to be closed by the server.
func waitClientEnded(t *testing.T, c *gortsplib.Client, what string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the session is still open", what)
	}
}

func TestShareLinkLifecycleOverRTSP(t *testing.T) {
	n := startNode(t, t.TempDir())
	window := `"not_before":"` + time.Now().Add(-time.Minute).UTC().Format(time.RFC3339) + `","not_after":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"`
	out := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live"],`+window+`,"max_viewers":1}`, 201)
	id, tok := out["id"].(string), out["token"].(string)
	if id == "" || tok == "" || !strings.Contains(out["url"].(string), "/s/") {
		t.Fatalf("create link: %v", out)
	}
	if got, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok); err != nil || got != "h264" {
		t.Fatalf("link without sound over RTSP: %q %v", got, err)
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok[:len(tok)-3]+"abc"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("tampered link token: %v", err)
	}

	c := playRTSP(t, n, tok)
	defer c.Close()
	// max_viewers 1: a second viewer of the link is refused while the first plays.
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok); err == nil {
		t.Fatal("a second viewer of a max_viewers=1 link was admitted")
	}
	mustCall(t, n, "POST", "/links/"+id+"/disable", "", 200)
	waitClientEnded(t, c, "after disable")
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("disabled link: %v", err)
	}
	mustCall(t, n, "POST", "/links/"+id+"/enable", "", 200)
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok); err != nil {
		t.Fatalf("re-enabled link: %v", err)
	}
	mustCall(t, n, "DELETE", "/links/"+id, "", 200)
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok); err == nil {
		t.Fatal("deleted link still plays")
	}
}

// TestLinkStopsWhenCreatorLosesShare: a viewer with `share` makes a link;
// revoking the viewer's grant ends the link's open session.
func TestLinkStopsWhenCreatorLosesShare(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/subjects/owner", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/g-owner", `{"subject":"owner","device":"cam1","actions":["live","share"]}`, 200)
	code, out := n.callAs(t, viewerToken(t, "owner"), "POST", "/links",
		`{"device":"cam1","actions":["live"],"not_after":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`)
	if code != 201 {
		t.Fatalf("viewer with share creating a link: %d %v", code, out)
	}
	c := playRTSP(t, n, out["token"].(string))
	defer c.Close()
	mustCall(t, n, "DELETE", "/grants/g-owner", "", 200)
	waitClientEnded(t, c, "after the creator lost share")
}

// TestFailedAuthIsRateLimited: after too many bad tokens from one address,
// even a good token is refused with 429 for the rest of the minute.
func TestFailedAuthIsRateLimited(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), func(c *config.Config) { c.Limits.AuthFailuresPerMinute = 3 })
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/a", `{"subject":"alice","device":"cam1","actions":["live"]}`, 200)
	// ffprobe may retry a refused DESCRIBE, so count refusals until the
	// limiter answers 429 — at most 3 failures.
	for i := 0; ; i++ {
		_, err := probeCodecs(t, n.rtsp+"/cam1?token=forged")
		if err != nil && strings.Contains(err.Error(), "429") {
			break
		}
		if err == nil || !strings.Contains(err.Error(), "401") || i == 3 {
			t.Fatalf("forged token, attempt %d: %v", i+1, err)
		}
	}
	if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+viewerToken(t, "alice")); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("after 3 failures want 429, got %v", err)
	}
}

// TestLinkKeysRotateWithoutBreakingLinks: after a rotation, a link made
// before still plays and a new one is signed with the new key.
func TestLinkKeysRotateWithoutBreakingLinks(t *testing.T) {
	n := startNode(t, t.TempDir())
	body := `{"device":"cam1","actions":["live"],"not_after":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `"}`
	old := mustCall(t, n, "POST", "/links", body, 201)
	rot := mustCall(t, n, "POST", "/link-keys/rotate", "", 200)
	if keys, _ := rot["keys"].([]any); len(keys) != 2 || keys[0] != rot["kid"] {
		t.Fatalf("after rotation: %v", rot)
	}
	fresh := mustCall(t, n, "POST", "/links", body, 201)
	for name, tok := range map[string]string{"old": old["token"].(string), "new": fresh["token"].(string)} {
		if _, err := probeCodecs(t, n.rtsp+"/cam1?token="+tok); err != nil {
			t.Fatalf("%s link after rotation: %v", name, err)
		}
	}
	if code, _ := n.callAs(t, viewerToken(t, "alice"), "POST", "/link-keys/rotate", ""); code != 403 {
		t.Fatalf("a viewer rotating keys: %d", code)
	}
}
