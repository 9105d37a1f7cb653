package gateway

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/gateway/events"
	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/internal/poll"
	"github.com/camgate/camgate/internal/redistest"
)

// eventStream is one SSE client of /api/v1/events/stream.
type eventStream struct {
	events chan events.Event
	close  func()
}

func openEvents(t *testing.T, n *node, bearer string) *eventStream {
	t.Helper()
	req, _ := http.NewRequest("GET", n.api+"/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		res.Body.Close()
		t.Fatalf("events stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	s := &eventStream{events: make(chan events.Event, 64), close: func() { res.Body.Close() }}
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data: ") {
				var ev events.Event
				if json.Unmarshal([]byte(line[6:]), &ev) == nil {
					s.events <- ev
				}
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *eventStream) next(t *testing.T, what string) events.Event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("%s: the stream ended", what)
		}
		return ev
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no event within 15 s", what)
	}
	return events.Event{}
}

func eventPage(t *testing.T, n *node, bearer, query string) []events.Event {
	t.Helper()
	code, out := n.callAs(t, bearer, "GET", "/events?"+query, "")
	if code != 200 {
		t.Fatalf("GET /events?%s: %d %v", query, code, out)
	}
	var evs []events.Event
	if err := remarshal(out["events"], &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// Notices end to end: alice (with `notices` on cam1 and cam2) follows the
// stream; an alarm on cam1 reaches her, bob (live only) gets nothing of it
// but the share offer addressed to him. Then alice's cam1 grant is deleted
// mid-stream: cam1's next alarm is not delivered, cam2's after it is.
func TestNoticesStreamStopsAtRevocation(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/devices/cam2", `{"site":"hq","kind":"camera","source":"builtin:demo"}`, 200)
	mustCall(t, n, "PUT", "/subjects/alice", `{"kind":"user","name":"Alice"}`, 200)
	mustCall(t, n, "PUT", "/subjects/bob", `{"kind":"user","name":"Bob","email":"bob@example.com"}`, 200)
	mustCall(t, n, "PUT", "/grants/a1", `{"subject":"alice","device":"cam1","actions":["live","notices","share"]}`, 200)
	mustCall(t, n, "PUT", "/grants/a2", `{"subject":"alice","device":"cam2","actions":["notices"]}`, 200)
	mustCall(t, n, "PUT", "/grants/b1", `{"subject":"bob","device":"cam1","actions":["live"]}`, 200)
	alice := openEvents(t, n, viewerToken(t, "alice"))
	bob := openEvents(t, n, viewerToken(t, "bob"))
	poll.Until(t, "both streams to subscribe", func() bool { return n.g.events.Streams() == 2 })

	mustCall(t, n, "POST", "/devices/cam1/alarm", "", 200)
	if ev := alice.next(t, "alice, cam1's alarm"); ev.Kind != events.KindAlarm || ev.Device != "cam1" || ev.Data["alarm_until"] == "" || ev.By != "root" {
		t.Fatalf("alice got %+v", ev)
	}
	mustCall(t, n, "POST", "/shares", `{"device":"cam1","owner":"alice","recipient_email":"bob@example.com","actions":["live","notices"]}`, 201)
	if ev := bob.next(t, "bob, the share offer"); ev.Kind != events.KindShareOffer || ev.Recipient != "bob" || ev.Data["owner"] != "alice" {
		t.Fatalf("bob's first event is %+v, want the share offer (not cam1's alarm)", ev)
	}

	mustCall(t, n, "DELETE", "/grants/a1", "", 200)
	mustCall(t, n, "POST", "/devices/cam1/alarm", "", 200)
	mustCall(t, n, "POST", "/devices/cam2/alarm", "", 200)
	if ev := alice.next(t, "alice after losing cam1"); ev.Device != "cam2" {
		t.Fatalf("alice got %+v after losing notices on cam1, want cam2's alarm", ev)
	}
	if evs := eventPage(t, n, viewerToken(t, "alice"), "device=cam1"); len(evs) != 0 {
		t.Fatalf("alice's cam1 page after the revocation: %+v", evs)
	}
	if evs := eventPage(t, n, testAdminKey, "device=cam1"); len(evs) != 3 || evs[1].Kind != events.KindShareOffer {
		t.Fatalf("the admin's cam1 page (two alarms and the offer): %+v", evs)
	}
	if code, _ := n.callAs(t, viewerToken(t, "alice"), "GET", "/events?after=zz", ""); code != 400 {
		t.Fatalf("a bad cursor: %d", code)
	}
}

// Arm and disarm notify every device of the site; a stored photo and a
// PTZ take-over notify their device; the feed survives a restart.
func TestNoticesKindsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	mustCall(t, n, "PUT", "/sites/hq-east", `{"parent":"hq","name":"East wing"}`, 200)
	mustCall(t, n, "PUT", "/devices/cam2", `{"site":"hq-east","kind":"camera","source":"builtin:demo"}`, 200)
	mustCall(t, n, "POST", "/sites/hq/arm", "", 200)
	mustCall(t, n, "POST", "/sites/hq/disarm", "", 200)
	req, _ := http.NewRequest("POST", n.api+"/devices/cam1/objects?kind=photo", strings.NewReader("\xff\xd8\xff\xe0photo\xff\xd9"))
	req.Header.Set("Authorization", "Bearer "+testAdminKey)
	req.Header.Set("Content-Type", "image/jpeg")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("photo upload: %d", res.StatusCode)
	}
	n.g.notifyTakeover("cam1", takeoverResult())

	want := []string{"armed cam1", "armed cam2", "disarmed cam1", "disarmed cam2", "object_stored cam1", "ptz_takeover cam1"}
	kinds := func(evs []events.Event) []string {
		var out []string
		for _, ev := range evs {
			out = append(out, string(ev.Kind)+" "+ev.Device)
		}
		return out
	}
	evs := eventPage(t, n, testAdminKey, "")
	if got := kinds(evs); !sameSet(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	n.g.Close()
	n = startNode(t, dir)
	if got := kinds(eventPage(t, n, testAdminKey, "")); !sameSet(got, want) {
		t.Fatalf("after a restart: %v, want %v", got, want)
	}
}

// Two nodes on one Redis see one feed: an alarm raised through node A
// reaches a stream open on node B.
func TestNoticesOneFeedOnTwoNodes(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{NoPersistence: true})
	a, b := startRedisNodes(t, srv.URL)
	mustCall(t, a, "PUT", "/subjects/alice", `{"kind":"user"}`, 200)
	mustCall(t, a, "PUT", "/grants/a1", `{"subject":"alice","device":"cam1","actions":["notices"]}`, 200)
	poll.Until(t, "B to know alice's grant", func() bool {
		code, out := b.call(t, "GET", "/check?subject=alice&device=cam1&action=notices", "")
		return code == 200 && out["allowed"] == true
	})
	s := openEvents(t, b, viewerToken(t, "alice"))
	poll.Until(t, "the stream on B to subscribe", func() bool { return b.g.events.Streams() == 1 })
	mustCall(t, a, "POST", "/devices/cam1/alarm", "", 200)
	if ev := s.next(t, "alice on B"); ev.Kind != events.KindAlarm || ev.Device != "cam1" {
		t.Fatalf("got %+v", ev)
	}
	if evs := eventPage(t, b, viewerToken(t, "alice"), ""); len(evs) != 1 {
		t.Fatalf("B's page: %+v", evs)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, v := range seen {
		if v != 0 {
			return false
		}
	}
	return true
}

// takeoverResult is a PTZ answer in which a privacy manager took cam1
// over from a user (the take-over itself is tested in gateway/ptz).
func takeoverResult() ptz.Result {
	return ptz.Result{Camera: "cam1", Op: "move", Holder: ptz.Holder{ID: "pm", Kind: ptz.KindPrivacyManager},
		TookOverFrom: &ptz.Holder{ID: "alice", Kind: ptz.KindUser}}
}

// Admins see the events of the devices within their reach, with
// devices:read; a share-link token is no API caller (401); a viewer with
// nothing sees an empty feed, not an error.
func TestNoticesScopedForAdminsAndLinks(t *testing.T) {
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/roles/ops", `{"actions":[],"sections":["devices:read","devices:write"],"individual_access":true}`, 200)
	mustCall(t, n, "PUT", "/roles/nodev", `{"actions":[],"sections":["grants:read"]}`, 200)
	ops := mustCall(t, n, "PUT", "/admins/ops", `{"roles":["ops"]}`, 200)["key"].(string)
	nodev := mustCall(t, n, "PUT", "/admins/nodev", `{"roles":["nodev"]}`, 200)["key"].(string)
	if code, out := n.callAs(t, ops, "PUT", "/devices/own1", `{"site":"hq","kind":"camera","source":"builtin:demo"}`); code/100 != 2 {
		t.Fatalf("ops creates own1: %d %v", code, out)
	}
	mustCall(t, n, "POST", "/devices/cam1/alarm", "", 200)
	mustCall(t, n, "POST", "/devices/own1/alarm", "", 200)
	if evs := eventPage(t, n, ops, ""); len(evs) != 1 || evs[0].Device != "own1" {
		t.Fatalf("ops (individual access) sees %+v, want own1's alarm only", evs)
	}
	if evs := eventPage(t, n, nodev, ""); len(evs) != 0 {
		t.Fatalf("an admin without devices:read sees %+v", evs)
	}
	if evs := eventPage(t, n, viewerToken(t, "nobody"), ""); len(evs) != 0 {
		t.Fatalf("a viewer without notices sees %+v", evs)
	}
	// A privacy manager of the site sees its devices' events with no grant.
	mustCall(t, n, "PUT", "/subjects/pm", `{"kind":"user","name":"PM"}`, 200)
	mustCall(t, n, "PUT", "/sites/hq", `{"name":"hq","privacy_managers":["pm"]}`, 200)
	if evs := eventPage(t, n, viewerToken(t, "pm"), ""); len(evs) != 2 {
		t.Fatalf("the privacy manager of hq sees %+v, want both alarms", evs)
	}
	link := mustCall(t, n, "POST", "/links", `{"device":"cam1","actions":["live"],"not_after":"`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`"}`, 201)["token"].(string)
	if code, _ := n.callAs(t, link, "GET", "/events", ""); code != 401 {
		t.Fatalf("a share-link token reading the feed: %d, want 401", code)
	}
}
