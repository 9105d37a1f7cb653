package events

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/internal/poll"
)

// fakeAccess lets subject S see device D while allowed[S+"/"+D].
type fakeAccess struct {
	mu      sync.Mutex
	allowed map[string]bool
}

func (f *fakeAccess) set(subject, device string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.allowed[subject+"/"+device] = ok
}

func (f *fakeAccess) SeesEvent(p access.Principal, device, recipient string) bool {
	if recipient != "" {
		return p.ID == recipient
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.allowed[p.ID+"/"+device]
}

// feed is a Service on a bolt file with an HTTP front on 127.0.0.1 that
// takes the subject from ?sub=.
type feed struct {
	s      *Service
	access *fakeAccess
	url    string
}

func startFeed(t *testing.T) *feed {
	t.Helper()
	st, err := OpenBoltStore(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAccess{allowed: map[string]bool{}}
	s := &Service{Store: st, Access: fa, Heartbeat: 200 * time.Millisecond}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		p := access.Principal{Kind: access.KindSubject, ID: string(ctx.QueryArgs().Peek("sub"))}
		parts := strings.Split(strings.Trim(string(ctx.Path()), "/"), "/")
		if err := s.HandleAPI(ctx, p, parts); err != nil {
			ctx.Error(err.Error(), 400)
		}
	}}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		s.Close() // ends the streams first
		_ = srv.Shutdown()
		<-done
		_ = st.Close()
	})
	return &feed{s: s, access: fa, url: "http://" + ln.Addr().String()}
}

func (f *feed) publish(t *testing.T, kind Kind, device string) Event {
	t.Helper()
	ev := Event{Kind: kind, Device: device}
	if err := f.s.Publish(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// sseClient reads one event stream.
type sseClient struct {
	res    *http.Response
	events chan Event
}

func openStream(t *testing.T, url string, lastID string) *sseClient {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	c := &sseClient{res: res, events: make(chan Event, 64)}
	go func() {
		defer close(c.events)
		sc := bufio.NewScanner(res.Body)
		var id string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				var ev Event
				if json.Unmarshal([]byte(line[6:]), &ev) == nil && ev.ID == id {
					c.events <- ev
				}
			}
		}
	}()
	t.Cleanup(func() { res.Body.Close() })
	return c
}

func (c *sseClient) next(t *testing.T) Event {
	t.Helper()
	select {
	case ev, ok := <-c.events:
		if !ok {
			t.Fatal("the stream ended")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
	return Event{}
}

// A stream delivers what its subject may see, decided at delivery: once
// the subject loses the device, its next event is not delivered, while
// another device's still is.
func TestStreamStopsAtRevocation(t *testing.T) {
	f := startFeed(t)
	f.access.set("alice", "cam1", true)
	f.access.set("alice", "cam2", true)
	c := openStream(t, f.url+"/events/stream?sub=alice", "")
	poll.Until(t, "the stream to subscribe", func() bool { return f.s.Streams() == 1 })
	f.publish(t, KindAlarm, "cam1")
	if ev := c.next(t); ev.Device != "cam1" || ev.Kind != KindAlarm {
		t.Fatalf("got %+v", ev)
	}
	f.access.set("alice", "cam1", false)
	f.publish(t, KindArmed, "cam1")
	f.publish(t, KindArmed, "cam2")
	if ev := c.next(t); ev.Device != "cam2" {
		t.Fatalf("after revoking cam1, got %+v (want cam2's event only)", ev)
	}
}

// A client that reconnects with Last-Event-ID gets what it missed (that it
// may see), then live events; a page lists the same, filtered by device.
func TestResumeAndPages(t *testing.T) {
	f := startFeed(t)
	f.access.set("bob", "cam1", true)
	f.publish(t, KindAlarm, "cam1")
	f.publish(t, KindAlarm, "cam2") // not bob's
	f.publish(t, KindDisarmed, "cam1")
	all, _ := f.s.Store.After(context.Background(), "", 10)
	c := openStream(t, f.url+"/events/stream?sub=bob", all[0].ID)
	if ev := c.next(t); ev.ID != all[2].ID {
		t.Fatalf("resumed with %+v, want %s", ev, all[2].ID)
	}
	poll.Until(t, "the stream to subscribe", func() bool { return f.s.Streams() == 1 })
	f.publish(t, KindAlarm, "cam1")
	if ev := c.next(t); ev.Kind != KindAlarm || ev.Device != "cam1" {
		t.Fatalf("live after resume: %+v", ev)
	}

	get := func(q string) Page {
		res, err := http.Get(f.url + "/events?sub=bob&" + q)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var p Page
		if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := get("limit=2")
	if len(p.Events) != 2 || p.Events[0].ID != all[0].ID || p.Events[1].ID != all[2].ID {
		t.Fatalf("page 1: %+v", p)
	}
	if p2 := get("after=" + p.Next); len(p2.Events) != 1 || p2.Events[0].Kind != KindAlarm {
		t.Fatalf("page 2: %+v", p2)
	}
	if p3 := get("device=cam2"); len(p3.Events) != 0 {
		t.Fatalf("cam2 is not bob's: %+v", p3)
	}
	res, _ := http.Get(f.url + "/events?sub=bob&after=nope")
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Fatalf("bad cursor: %d", res.StatusCode)
	}
}
