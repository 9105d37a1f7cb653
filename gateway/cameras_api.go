package gateway

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/camgate/camgate/gateway/access"
	"github.com/camgate/camgate/gateway/recorder"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/httpjson"
)

// cameraState is one camera as GET /api/v1/cameras shows it to an admin:
// its device record's essentials, this node's pull of it, its owner in the
// cluster and its viewers on each node.
type cameraState struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	Site      string `json:"site"`
	Record    bool   `json:"record"`
	Recording bool   `json:"recording"` // this node records it now
	// RecordingState is what this node's recording of it does (nil when
	// this node does not record it).
	RecordingState *recordingState `json:"recording_state,omitempty"`
	// Upstream is this node's pull of the camera; nil while it does not
	// pull it (no viewer or recording here).
	Upstream *upstreamState `json:"upstream"`
	// Owner is the node that pulls the camera for the cluster (cluster
	// only; nil while nobody needs the camera).
	Owner *ownerState `json:"owner,omitempty"`
	// Viewers counts open viewer sessions by node ("" without Redis:
	// this node); relays between nodes are not viewers.
	Viewers map[string]int `json:"viewers"`
	// Relays is how many nodes this node feeds the camera to.
	Relays int `json:"relays"`
}

type upstreamState struct {
	Users      int    `json:"users"`
	Readers    int    `json:"readers"`
	Reconnects uint64 `json:"reconnects"`
	Dropped    uint64 `json:"dropped"`
	LastError  string `json:"last_error,omitempty"`
	// Codecs the camera sends, "video/H264", "audio/G711" (what each edge
	// does with each: README, Cameras and codecs).
	Codecs []string `json:"codecs"`
	// Transport of the pull now: "UDP" or "TCP" (the camera's `transport`).
	Transport string `json:"transport,omitempty"`
	// PacketsLost counts RTP packets lost on the way from the camera;
	// LossWarning says when that loss is sustained, and what to change.
	PacketsLost uint64 `json:"packets_lost"`
	LossWarning string `json:"loss_warning,omitempty"`
}

// recordingState is recorder.State: "recording" (with the media left out,
// "audio/G722"), "retrying" (reason: the last error), "cannot_record"
// (reason: the codecs the archive cannot store; not retried until the
// device changes).
type recordingState struct {
	State       string   `json:"state"`
	Reason      string   `json:"reason,omitempty"`
	NotRecorded []string `json:"not_recorded,omitempty"`
}

type ownerState struct {
	Node  string    `json:"node"`
	Addr  string    `json:"addr"`
	Fence uint64    `json:"fence"`
	Since time.Time `json:"since"`
	Age   string    `json:"age"`
	Self  bool      `json:"self"` // this node
}

// listCameras serves GET /api/v1/cameras[/{id}] for admins with
// devices:read, within their reach (individual access).
func (g *Gateway) listCameras(ctx *fasthttp.RequestCtx, p access.Principal, parts []string) error {
	if string(ctx.Method()) != fasthttp.MethodGet {
		return fmt.Errorf("%w: GET /api/v1/cameras", httpjson.ErrMethodNotAllowed)
	}
	c := p.Caller()
	if !g.authz.AdminAllows(c, "devices:read") {
		return fmt.Errorf("%w: listing cameras needs an admin key with devices:read", access.ErrForbidden)
	}
	stats := map[string]stream.Stats{}
	for _, st := range g.hub.Stats() {
		stats[st.Camera] = st
	}
	var recording map[string]recorder.State
	if g.recorder != nil {
		recording = g.recorder.States()
	}
	sessions := g.sessionsAPI().List()
	self := "" // this node's name in session lists ("" without Redis)
	if g.redis != nil && g.redis.directory != nil {
		self = g.redis.directory.Node
	}
	var out []cameraState
	for _, d := range g.authz.Devices() {
		if d.Kind != "camera" || (len(parts) == 2 && d.ID != parts[1]) || !g.authz.AdminSees(c, "devices", d.ID) {
			continue
		}
		cs := cameraState{ID: d.ID, Name: d.Name, Site: d.Site, Record: d.Record, Viewers: map[string]int{}}
		if rs, ok := recording[d.ID]; ok {
			cs.Recording = rs.State != recorder.StateCannotRecord
			cs.RecordingState = &recordingState{State: rs.State, Reason: rs.Reason, NotRecorded: rs.NotRecorded}
		}
		if st, ok := stats[d.ID]; ok {
			cs.Upstream = &upstreamState{Users: st.Users, Readers: st.Readers, Reconnects: st.Reconnects, Dropped: st.Dropped,
				LastError: st.LastError, Codecs: st.Codecs, Transport: st.Transport, PacketsLost: st.PacketsLost, LossWarning: st.LossWarning}
		}
		for _, ss := range sessions {
			if ss.Camera != d.ID {
				continue
			}
			if ss.Relay != "" {
				if ss.Node == self {
					cs.Relays++
				}
				continue
			}
			cs.Viewers[ss.Node]++
		}
		out = append(out, cs)
	}
	if n := g.cluster.Load(); n != nil && len(out) > 0 {
		ids := make([]string, len(out))
		for i := range out {
			ids[i] = out[i].ID
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		owners, _ := n.Owners(rctx, ids) // one round trip for every camera; none while Redis is down
		cancel()
		for i := range out {
			if l, ok := owners[out[i].ID]; ok {
				since := time.UnixMilli(l.Since).UTC()
				out[i].Owner = &ownerState{Node: l.Node, Addr: l.Addr, Fence: l.Fence, Since: since,
					Age: time.Since(since).Round(time.Second).String(), Self: l.Node == n.ID}
			}
		}
	}
	slices.SortFunc(out, func(a, b cameraState) int { return cmp.Compare(a.ID, b.ID) })
	if len(parts) == 2 {
		if len(out) == 0 {
			return fmt.Errorf("%w: unknown camera %s", access.ErrNotVisible, parts[1])
		}
		httpjson.WriteJSON(ctx, fasthttp.StatusOK, out[0])
		return nil
	}
	if out == nil {
		out = []cameraState{}
	}
	httpjson.WriteJSON(ctx, fasthttp.StatusOK, map[string]any{"cameras": out})
	return nil
}
