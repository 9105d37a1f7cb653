package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/authz/jsonapi"
	"github.com/camgate/camgate/authz/redisstore"
	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/events"
	"github.com/camgate/camgate/gateway/ptz"
)

// eventsRetention is how long the feed keeps events (README "Notices").
const eventsRetention = 7 * 24 * time.Hour

// startEvents opens the notification feed: DATA/events.db, or the shared
// Redis stream with redis.url. It returns the closer that ends its streams,
// to be run before the HTTP front closes (which waits for open streams).
func (g *Gateway) startEvents() (func(), error) {
	var st events.Store
	if g.redis != nil {
		// The feed is followed on a connection of its own that blocks
		// until an event arrives: an idle node sends Redis nothing for it
		// (TestRedisRoundTrips), and a new event reaches every node at once.
		tail, err := redisstore.NewClient(g.Config.Redis.URL)
		if err != nil {
			return nil, fmt.Errorf("redis.url: %w", err)
		}
		rs := &events.RedisStore{Client: g.redis.client, Tail: tail, TTL: eventsRetention, Block: -1}
		if err := rs.Initialize(); err != nil {
			_ = tail.Close()
			return nil, err
		}
		st = rs
	} else {
		bs, err := events.OpenBoltStore(filepath.Join(g.Config.DataDir, "events.db"))
		if err != nil {
			return nil, err
		}
		st = bs
	}
	g.closers = append(g.closers, func() { _ = st.Close() })
	g.events = &events.Service{Store: st, Access: g.access, Retention: eventsRetention, Logger: g.Logger.With("component", "events")}
	if err := g.events.Initialize(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return g.events.Close, nil
}

// publish adds one event to the feed; a failure is logged, never the
// caller's: the write it reports has happened.
func (g *Gateway) publish(ev events.Event) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.events.Publish(ctx, ev); err != nil {
		g.Logger.Warn("events: could not record a notification", "kind", ev.Kind, "device", ev.Device, "error", err)
	}
}

// notifyingAuthz is the permission API as the HTTP front sees it: authz
// answers, and the writes that are camera notifications (arm, disarm,
// alarm, a share offered) are then published to the feed. authz itself
// knows nothing of the feed.
type notifyingAuthz struct{ g *Gateway }

// Handle implements httpapi.Authz.
func (n notifyingAuthz) Handle(ctx context.Context, c authz.Caller, method string, parts []string, query url.Values, body []byte) (jsonapi.Result, error) {
	res, err := jsonapi.Handler{Service: n.g.authz}.Handle(ctx, c, method, parts, query, body)
	if err == nil {
		n.g.notifyAPI(ctx, access.FromCaller(c).String(), method, parts, res)
	}
	return res, err
}

// notifyAPI publishes the events of one successful API write.
func (g *Gateway) notifyAPI(ctx context.Context, by, method string, parts []string, res jsonapi.Result) {
	switch {
	case method == fasthttp.MethodPost && len(parts) == 3 && parts[0] == "sites" && (parts[2] == "arm" || parts[2] == "disarm"):
		kind := events.KindArmed
		if parts[2] == "disarm" {
			kind = events.KindDisarmed
		}
		for _, dev := range g.siteDevices(parts[1]) {
			g.publish(events.Event{Kind: kind, Device: dev.ID, Site: parts[1], By: by})
		}
	case method == fasthttp.MethodPost && len(parts) == 3 && parts[0] == "devices" && parts[2] == "alarm":
		var out struct {
			AlarmUntil time.Time `json:"alarm_until"`
		}
		_ = remarshal(res.Body, &out)
		dev, _ := g.authz.Device(parts[1])
		g.publish(events.Event{Kind: events.KindAlarm, Device: parts[1], Site: dev.Site, By: by,
			Data: map[string]string{"alarm_until": out.AlarmUntil.UTC().Format(time.RFC3339)}})
	case parts[0] == "shares" && (method == fasthttp.MethodPost && len(parts) == 1 || method == fasthttp.MethodPut && len(parts) == 2):
		g.notifyShare(ctx, by, parts, res)
	}
}

// notifyShare offers a pending share to its recipient: the share as
// stored (recipient resolved from the email), read back through the API.
func (g *Gateway) notifyShare(ctx context.Context, by string, parts []string, res jsonapi.Result) {
	id := ""
	if len(parts) == 2 {
		id = parts[1]
	} else {
		var created struct{ ID string }
		_ = remarshal(res.Body, &created)
		id = created.ID
	}
	if id == "" {
		return
	}
	got, err := g.authz.Get(ctx, authz.Caller{Root: true}, authz.KindShares, id)
	if err != nil {
		return
	}
	sh, ok := got.(*authz.Share)
	if !ok || sh.Recipient == "" || sh.State != "pending" {
		return
	}
	dev, _ := g.authz.Device(sh.Device)
	acts, _ := json.Marshal(sh.Actions)
	g.publish(events.Event{Kind: events.KindShareOffer, Device: sh.Device, Site: dev.Site, Recipient: sh.Recipient, By: by,
		Data: map[string]string{"share": sh.ID, "owner": sh.Owner, "actions": string(acts)}})
}

// remarshal copies an API answer body into out through JSON.
func remarshal(body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// siteDevices lists the devices of a site and of its sub-sites.
func (g *Gateway) siteDevices(site string) []authz.Device {
	var out []authz.Device
	for _, d := range g.authz.Devices() {
		for s, depth := d.Site, 0; s != "" && depth < 64; depth++ {
			if s == site {
				out = append(out, d)
				break
			}
			st, ok := g.authz.Site(s)
			if !ok {
				break
			}
			s = st.Parent
		}
	}
	return out
}

// notifyObject publishes a stored photo or clip once the upload answered
// 201 {"id","kind","at"}.
func (g *Gateway) notifyObject(ctx *fasthttp.RequestCtx, by, device string) {
	if ctx.Response.StatusCode() != fasthttp.StatusCreated {
		return
	}
	var o struct{ ID, Kind string }
	if json.Unmarshal(ctx.Response.Body(), &o) != nil || o.ID == "" {
		return
	}
	dev, _ := g.authz.Device(device)
	g.publish(events.Event{Kind: events.KindObjectStored, Device: device, Site: dev.Site, By: by,
		Data: map[string]string{"object": o.ID, "object_kind": o.Kind}})
}

// notifyTakeover publishes a PTZ take-over.
func (g *Gateway) notifyTakeover(camera string, res ptz.Result) {
	if res.TookOverFrom == nil {
		return
	}
	dev, _ := g.authz.Device(camera)
	g.publish(events.Event{Kind: events.KindPTZTakeover, Device: camera, Site: dev.Site, By: res.Holder.Kind + ":" + res.Holder.ID,
		Data: map[string]string{"holder": res.Holder.ID, "holder_kind": res.Holder.Kind, "from": res.TookOverFrom.ID, "from_kind": res.TookOverFrom.Kind}})
}
