// Package session is the registry of live viewer sessions on this node (RTSP,
// HLS, WebRTC). Every session carries the decision that admitted it and its
// valid_until; the registry re-checks it on every invalidation that names its
// subject, camera or link, and at valid_until, and ends it when it lost
// access. A session is ended by its protocol's own means (RTSP close, WHEP
// peer close, HLS 403 on the next request) through the Kick function it
// registered with.
package session

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// Protocols.
const (
	ProtocolRTSP   = "rtsp"
	ProtocolHLS    = "hls"
	ProtocolWebRTC = "webrtc"
)

// Session is one viewer session. Fields are set before Add and not changed
// afterwards, except through the registry.
type Session struct {
	ID       string `json:"id"`
	Protocol string `json:"protocol"`
	Camera   string `json:"camera"`
	Subject  string `json:"subject,omitempty"`
	Link     string `json:"link,omitempty"`
	// Credential is the stream credential that admitted the session (RTSP
	// Basic/Digest with a camgate username), so revoking it ends the session.
	Credential string `json:"credential,omitempty"`
	// Relay is the cluster node this session feeds (a relay carries media
	// for that node's own viewers; it has no subject or link).
	Relay   string    `json:"relay,omitempty"`
	Variant string    `json:"variant"`
	Remote  string    `json:"remote,omitempty"`
	Node    string    `json:"node,omitempty"`
	Started time.Time `json:"started"`
	// ValidUntil is when the admitting decision expires by time alone (zero:
	// never); the session is re-checked then.
	ValidUntil time.Time `json:"valid_until,omitzero"`

	// Kick ends the session on its protocol; reason is logged and counted.
	// It must not block for long and may be called more than once.
	Kick func(reason string) `json:"-"`

	timer *time.Timer
}

// Verdict is the result of re-checking a session.
type Verdict struct {
	Allowed    bool
	Reason     string
	ValidUntil time.Time
	// End classifies a refusal (default EndRevoked).
	End EndReason
}

// EndReason is why a session ended, as the metrics count it; the text
// reason that goes with it is for logs.
type EndReason uint8

// End reasons.
const (
	// EndViewerLeft: the viewer closed, tore down or timed out.
	EndViewerLeft EndReason = iota
	// EndRevoked: a re-check found the access gone.
	EndRevoked
	// EndKicked: an admin ended it through the API.
	EndKicked
	// EndUnavailable: a re-check could not be decided (store unreachable
	// past its grace, token no longer verifiable).
	EndUnavailable
)

// EndReasons lists every end reason, in metric order.
var EndReasons = []EndReason{EndViewerLeft, EndRevoked, EndKicked, EndUnavailable}

func (e EndReason) String() string {
	switch e {
	case EndViewerLeft:
		return "viewer_left"
	case EndRevoked:
		return "revoked"
	case EndKicked:
		return "api"
	case EndUnavailable:
		return "unavailable"
	}
	return "other"
}

// Change names what an authorization write affected. All means everything
// (a gap in the invalidation stream, a reload).
type Change struct {
	All      bool
	Subjects []string
	Devices  []string
	Links    []string
	// Credentials names revoked stream credentials.
	Credentials []string
	// Pairs names single (subject, device) decisions, e.g. one grant.
	Pairs []Pair
}

// Pair is one subject on one device.
type Pair struct{ Subject, Device string }

// Registry holds this node's sessions.
type Registry struct {
	// Recheck decides again whether s may continue (required).
	Recheck func(s *Session) Verdict
	// OnStart may refuse a session as it is added (e.g. a share link at its
	// max_viewers); the session is then kicked with the error (optional).
	OnStart func(s *Session) error
	// OnEnd is told of every session that ends, with why (optional). It is
	// called once for every session that was added.
	OnEnd func(s *Session, end EndReason, reason string)
	// Logger (default: discard).
	Logger *slog.Logger

	mu        sync.Mutex // guards the maps and closed
	closed    bool
	timers    sync.WaitGroup // valid_until re-checks running now
	byID      map[string]*Session
	bySubject map[string]map[*Session]struct{}
	byDevice  map[string]map[*Session]struct{}
	byLink    map[string]map[*Session]struct{}
	byCred    map[string]map[*Session]struct{}
}

// Initialize applies defaults.
func (r *Registry) Initialize() error {
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	r.byID = make(map[string]*Session)
	r.bySubject = make(map[string]map[*Session]struct{})
	r.byDevice = make(map[string]map[*Session]struct{})
	r.byLink = make(map[string]map[*Session]struct{})
	r.byCred = make(map[string]map[*Session]struct{})
	return nil
}

// NewID returns a random session id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Add registers s (assigning an ID when empty) and arms its expiry re-check.
// When OnStart refuses it, s is kicked at once and not registered.
func (r *Registry) Add(s *Session) {
	if s.ID == "" {
		s.ID = NewID()
	}
	if s.Started.IsZero() {
		s.Started = time.Now()
	}
	if r.OnStart != nil {
		if err := r.OnStart(s); err != nil {
			r.Logger.Info("session refused", "session", s.ID, "protocol", s.Protocol, "camera", s.Camera, "link", s.Link, "error", err)
			s.Kick(err.Error())
			return
		}
	}
	r.mu.Lock()
	r.byID[s.ID] = s
	index(r.bySubject, s.Subject, s)
	index(r.byDevice, s.Camera, s)
	index(r.byLink, s.Link, s)
	index(r.byCred, s.Credential, s)
	r.armLocked(s)
	r.mu.Unlock()
	r.Logger.Info("session started", "session", s.ID, "protocol", s.Protocol, "camera", s.Camera,
		"subject", s.Subject, "link", s.Link, "credential", s.Credential, "variant", s.Variant, "remote", s.Remote)
}

func index(m map[string]map[*Session]struct{}, key string, s *Session) {
	if key == "" {
		return
	}
	set := m[key]
	if set == nil {
		set = make(map[*Session]struct{})
		m[key] = set
	}
	set[s] = struct{}{}
}

func unindex(m map[string]map[*Session]struct{}, key string, s *Session) {
	if set := m[key]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(m, key)
		}
	}
}

// armLocked schedules the valid_until re-check (r.mu held).
func (r *Registry) armLocked(s *Session) {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.ValidUntil.IsZero() || r.closed {
		return
	}
	d := time.Until(s.ValidUntil)
	s.timer = time.AfterFunc(max(d, 0), func() {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		r.timers.Add(1) // under mu, so Close's Wait never races an Add
		r.mu.Unlock()
		defer r.timers.Done()
		r.recheck(s)
	})
}

// Close stops every valid_until timer and waits for the re-checks already
// running. Sessions stay registered: they belong to their protocol servers,
// which end them as they close; nothing is re-checked by time afterwards.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	for _, s := range r.byID {
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
	}
	r.mu.Unlock()
	r.timers.Wait()
}

// Remove unregisters a session that ended by itself (viewer left).
func (r *Registry) Remove(id, reason string) {
	r.mu.Lock()
	s := r.byID[id]
	if s != nil {
		r.removeLocked(s)
	}
	r.mu.Unlock()
	if s != nil {
		r.ended(s, EndViewerLeft, reason)
	}
}

func (r *Registry) removeLocked(s *Session) {
	delete(r.byID, s.ID)
	unindex(r.bySubject, s.Subject, s)
	unindex(r.byDevice, s.Camera, s)
	unindex(r.byLink, s.Link, s)
	unindex(r.byCred, s.Credential, s)
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}

func (r *Registry) ended(s *Session, end EndReason, reason string) {
	r.Logger.Info("session ended", "session", s.ID, "protocol", s.Protocol, "camera", s.Camera,
		"subject", s.Subject, "link", s.Link, "reason", reason, "duration", time.Since(s.Started).Round(time.Millisecond))
	if r.OnEnd != nil {
		r.OnEnd(s, end, reason)
	}
}

// Kick ends a session by id (an admin's kick); it reports whether the
// session existed.
func (r *Registry) Kick(id, reason string) bool {
	r.mu.Lock()
	s := r.byID[id]
	if s != nil {
		r.removeLocked(s)
	}
	r.mu.Unlock()
	if s == nil {
		return false
	}
	s.Kick(reason)
	r.ended(s, EndKicked, reason)
	return true
}

// Get returns a copy of a session.
func (r *Registry) Get(id string) (Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.byID[id]
	if s == nil {
		return Session{}, false
	}
	return s.snapshot(), true
}

func (s *Session) snapshot() Session {
	c := *s
	c.timer, c.Kick = nil, nil
	return c
}

// List returns a copy of every session.
func (r *Registry) List() []Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Session, 0, len(r.byID))
	for _, s := range r.byID {
		out = append(out, s.snapshot())
	}
	return out
}

// CountSubject returns how many sessions subject has open on this node.
func (r *Registry) CountSubject(subject string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bySubject[subject])
}

// CountCamera returns how many sessions watch camera on this node.
func (r *Registry) CountCamera(camera string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byDevice[camera])
}

// Len returns the number of sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// Invalidate re-checks every session the change touches, ending those that
// lost access. It returns how many were ended.
func (r *Registry) Invalidate(c Change) int {
	r.mu.Lock()
	var todo []*Session
	if c.All {
		todo = make([]*Session, 0, len(r.byID))
		for _, s := range r.byID {
			todo = append(todo, s)
		}
	} else {
		seen := make(map[*Session]struct{})
		collect := func(m map[string]map[*Session]struct{}, keys []string) {
			for _, k := range keys {
				for s := range m[k] {
					if _, dup := seen[s]; !dup {
						seen[s] = struct{}{}
						todo = append(todo, s)
					}
				}
			}
		}
		collect(r.bySubject, c.Subjects)
		collect(r.byDevice, c.Devices)
		collect(r.byLink, c.Links)
		collect(r.byCred, c.Credentials)
		for _, p := range c.Pairs {
			for s := range r.bySubject[p.Subject] {
				if _, dup := seen[s]; !dup && s.Camera == p.Device {
					seen[s] = struct{}{}
					todo = append(todo, s)
				}
			}
		}
	}
	r.mu.Unlock()
	ended := 0
	for _, s := range todo {
		if !r.recheck(s) {
			ended++
		}
	}
	return ended
}

// recheck decides again for s; it reports whether s continues.
func (r *Registry) recheck(s *Session) bool {
	v := r.Recheck(s)
	r.mu.Lock()
	if r.byID[s.ID] != s { // already gone
		r.mu.Unlock()
		return false
	}
	if v.Allowed {
		s.ValidUntil = v.ValidUntil
		r.armLocked(s)
		r.mu.Unlock()
		return true
	}
	r.removeLocked(s)
	r.mu.Unlock()
	s.Kick(v.Reason)
	r.ended(s, v.End, v.Reason)
	return false
}
