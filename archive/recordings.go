package archive

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// Recordings is what GET /archive/{camera}/recordings lists: the spans of
// continuous recording in a range and the gaps between them (a recorder
// restart, a camera outage, a change of owner in a cluster), so that a
// player or an operator sees where footage is missing without reading a
// playlist.
type Recordings struct {
	Camera string    `json:"camera"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Spans  []Span    `json:"spans"`
	Gaps   []Gap     `json:"gaps"`
}

// Span is continuous recording by one node: segments that each start
// within a second of the previous one's end; a change of node (of the
// camera's owner) starts a new span. In a cluster, Holder labels the node
// holding them for this answer only ("1", "2", … in order of first
// appearance), so that a viewer sees where the holder changes without
// learning the cluster's node ids; Node is that id, given only to a
// viewer the Grant says may see it (NodesGrant: camgate's gives it to
// holders of `settings` on the camera).
type Span struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration"` // seconds recorded
	Segments int       `json:"segments"`
	Node     string    `json:"node,omitempty"`
	Holder   string    `json:"holder,omitempty"`
}

// Gap is time between two spans where nothing was recorded: more than a
// second, or any time at all where the camera's owner changed. Time the
// viewer may not see is neither a span nor a gap.
type Gap struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Duration float64   `json:"duration"` // seconds
}

// ServeRecordings answers GET /archive/{camera}/recordings?start=&end=
// (end defaults to now, the range is capped as a playlist's) with the
// Recordings of the range, JSON. Each segment is authorized with
// "archive" at its recording time, as in a playlist; all refused: 403.
func (s *Store) ServeRecordings(ctx *fasthttp.RequestCtx, camera string) {
	start, end, ok := s.rangeRequest(ctx, camera, s.MaxPlaylist, true)
	if !ok {
		return
	}
	r, err := s.Recordings(ctx, token(ctx), camera, start, end)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, r)
}

// Recordings lists the spans and gaps of camera in [start, end) (see
// ServeRecordings).
func (s *Store) Recordings(ctx context.Context, tok, camera string, start, end time.Time) (Recordings, error) {
	auth, err := s.begin(ctx, tok, camera, ActionArchive)
	if err != nil {
		return Recordings{}, err
	}
	out := Recordings{Camera: camera, Start: start, End: end, Spans: []Span{}, Gaps: []Gap{}}
	self := ""
	if l := s.cluster.Load(); l != nil {
		self = l.Node
	}
	var denied error
	var cur *Span
	for _, sg := range s.segmentsOf(ctx, camera, start, end) {
		if _, err := auth.authorize(sg.Start); errors.Is(err, ErrForbidden) {
			denied, cur = err, nil // what follows is no gap: it may have been recorded
			continue
		} else if err != nil {
			return Recordings{}, err
		}
		node := sg.node
		if node == "" {
			node = self
		}
		if cur != nil && (sg.Start.Sub(cur.End) > contiguity || node != cur.Node) {
			if sg.Start.After(cur.End) {
				out.Gaps = append(out.Gaps, Gap{Start: cur.End, End: sg.Start, Duration: sg.Start.Sub(cur.End).Seconds()})
			}
			cur = nil
		}
		if cur == nil {
			out.Spans = append(out.Spans, Span{Start: sg.Start, End: sg.Start, Node: node})
			cur = &out.Spans[len(out.Spans)-1]
		}
		cur.End = sg.End()
		cur.Duration += sg.Duration.Seconds()
		cur.Segments++
	}
	labelHolders(out.Spans, auth.seesNodes())
	if len(out.Spans) == 0 {
		if denied != nil {
			return Recordings{}, denied
		}
		if _, err := auth.authorize(start); err != nil {
			return Recordings{}, err
		}
	}
	return out, nil
}

// labelHolders gives each span its holder's per-answer label and, unless
// the viewer may see node ids, removes them.
func labelHolders(spans []Span, ids bool) {
	labels := map[string]string{}
	for i := range spans {
		sp := &spans[i]
		if sp.Node == "" {
			continue
		}
		l, ok := labels[sp.Node]
		if !ok {
			l = strconv.Itoa(len(labels) + 1)
			labels[sp.Node] = l
		}
		sp.Holder = l
		if !ids {
			sp.Node = ""
		}
	}
}
