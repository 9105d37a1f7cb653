package events

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/internal/httpjson"
)

// maxPage bounds ?limit=.
const maxPage = 1000

// HandleAPI serves GET /api/v1/events (a page) and GET
// /api/v1/events/stream (Server-Sent Events) for an authenticated API
// caller; parts are the path segments after /api/v1.
func (s *Service) HandleAPI(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
	stream := len(parts) == 2 && parts[1] == "stream"
	if len(parts) != 1 && !stream {
		return fmt.Errorf("%w: use /api/v1/events or /api/v1/events/stream", httpjson.ErrNotFound)
	}
	if !ctx.IsGet() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET")
		return fmt.Errorf("%w: the event feed is read with GET", httpjson.ErrMethodNotAllowed)
	}
	if !p.IsAdmin() && p.Kind != access.KindSubject {
		return fmt.Errorf("%w: not an API caller", access.ErrForbidden)
	}
	q := ctx.QueryArgs()
	device := string(q.Peek("device"))
	rawAfter := string(q.Peek("after"))
	if stream && rawAfter == "" {
		rawAfter = string(ctx.Request.Header.Peek("Last-Event-ID"))
	}
	after, err := s.Store.ParseCursor(rawAfter)
	if err != nil {
		return err
	}
	if stream {
		s.serveStream(ctx, p, device, after)
		return nil
	}
	limit := 100
	if v := q.Peek("limit"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxPage {
			return fmt.Errorf("%w: limit: want 1 to %d, got %q", httpjson.ErrBadRequest, maxPage, v)
		}
		limit = n
	}
	page, err := s.List(ctx, p, device, after, limit)
	if err != nil {
		return fmt.Errorf("%w: the event feed is unreachable", httpjson.ErrUnavailable)
	}
	httpjson.WriteJSON(ctx, fasthttp.StatusOK, page)
	return nil
}

// serveStream answers text/event-stream: first what the client missed
// after its cursor (Last-Event-ID or ?after=), then every new event, each
// decided for p when it is written; a comment every Heartbeat keeps
// proxies from closing it and finds clients that left.
func (s *Service) serveStream(ctx *fasthttp.RequestCtx, p access.Principal, device, after string) {
	h := &ctx.Response.Header
	h.SetContentType("text/event-stream; charset=utf-8")
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set("X-Accel-Buffering", "no")
	sub := s.subscribe(device)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer s.unsubscribe(sub)
		write := func(b []byte) bool {
			_ = ctx.SetWriteDeadline(time.Now().Add(2 * s.Heartbeat))
			_, err := w.Write(b)
			return err == nil && w.Flush() == nil
		}
		if !write([]byte("retry: 3000\n: camgate events\n\n")) {
			return
		}
		cursor := after
		for after != "" { // the backlog, page by page
			batch, err := s.Store.After(s.ctx, cursor, 256)
			if err != nil || len(batch) == 0 {
				break
			}
			for i := range batch {
				cursor = batch[i].ID
				if s.visible(p, device, &batch[i]) && !write(sse(&batch[i])) {
					return
				}
			}
		}
		tick := time.NewTicker(s.Heartbeat)
		defer tick.Stop()
		for {
			select {
			case ev := <-sub.ch:
				if cursor != "" && s.Store.Compare(ev.ID, cursor) <= 0 {
					continue // already sent with the backlog
				}
				cursor = ev.ID
				if s.visible(p, device, &ev) && !write(sse(&ev)) {
					return
				}
			case <-tick.C:
				if !write([]byte(": keep-alive\n\n")) {
					return
				}
			case <-sub.lagged:
				return // the client resumes from its Last-Event-ID
			case <-s.ctx.Done():
				return
			case <-ctx.Done():
				return
			}
		}
	})
}

// sse formats one event: its id (for Last-Event-ID), its kind as the SSE
// event name, its JSON as the data line.
func sse(ev *Event) []byte {
	b, _ := json.Marshal(ev)
	out := make([]byte, 0, len(b)+len(ev.ID)+len(ev.Kind)+24)
	out = append(out, "id: "...)
	out = append(out, ev.ID...)
	out = append(out, "\nevent: "...)
	out = append(out, ev.Kind...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}
