package links

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"
)

// CreateRequest is the body of POST /api/v1/links.
type CreateRequest struct {
	Device      string     `json:"device"`
	Actions     []string   `json:"actions"`
	NotBefore   *time.Time `json:"not_before"`
	NotAfter    *time.Time `json:"not_after"`
	FootageFrom *time.Time `json:"footage_from"`
	FootageTo   *time.Time `json:"footage_to"`
	MaxViewers  int        `json:"max_viewers"`
}

// Created is the answer to a create: the token is returned this once.
type Created struct {
	ID    string `json:"id"`
	URL   string `json:"url"`
	Token string `json:"token"`
}

// LinkView is a link as the API shows it (never its token): the stored
// link, its window state and its open sessions on this node. Deleted links
// are never shown, so the embedded Deleted field is always omitted.
type LinkView struct {
	Link
	// State is the window's: "not_yet_active", "active" or "expired".
	State string `json:"state"`
	// Viewers is the number of open sessions of the link on this node.
	Viewers int `json:"viewers"`
}

// Link window states.
const (
	StateNotYetActive = "not_yet_active"
	StateActive       = "active"
	StateExpired      = "expired"
)

// linkActions are the actions a link may carry (the media-path ones).
var linkActions = []string{"live", "archive", "download", "sound", "ptz"}

// maxViewersLimit bounds max_viewers (a typo, not a policy).
const maxViewersLimit = 10000

func (s *Service) view(l *Link, now time.Time) LinkView {
	c := l.Clone()
	v := LinkView{Link: c, State: StateActive, Viewers: s.Viewers(c.ID)}
	switch {
	case now.Before(c.NotBefore):
		v.State = StateNotYetActive
	case !now.Before(c.NotAfter):
		v.State = StateExpired
	}
	return v
}

// validate checks a create request and returns the link it describes
// (without id, creator and creation time).
func (s *Service) validate(req CreateRequest, now time.Time) (Link, error) {
	l := Link{Device: req.Device, MaxViewers: req.MaxViewers, Enabled: true}
	if req.Device == "" {
		return l, fieldErr("device", "required")
	}
	if len(req.Actions) == 0 {
		req.Actions = []string{"live"}
	}
	for _, a := range req.Actions {
		if !slices.Contains(linkActions, a) {
			return l, fieldErr("actions", fmt.Sprintf("%q is not a link action (want some of %v)", a, linkActions))
		}
		if !slices.Contains(l.Actions, a) {
			l.Actions = append(l.Actions, a)
		}
	}
	if !slices.ContainsFunc(l.Actions, func(a string) bool { return a != "sound" }) {
		return l, fieldErr("actions", "sound only adds to live or archive; it does not give viewing by itself")
	}
	if req.NotAfter == nil {
		return l, fieldErr("not_after", "required: a link must end")
	}
	l.NotAfter = req.NotAfter.UTC()
	l.NotBefore = now.UTC()
	if req.NotBefore != nil {
		l.NotBefore = req.NotBefore.UTC()
	}
	switch {
	case !l.NotAfter.After(l.NotBefore):
		return l, fieldErr("not_after", "must be after not_before")
	case !l.NotAfter.After(now):
		return l, fieldErr("not_after", "must be in the future")
	case l.NotAfter.Sub(now) > s.MaxValidity:
		return l, fieldErr("not_after", fmt.Sprintf("at most %s from now", s.MaxValidity))
	}
	if req.FootageFrom != nil || req.FootageTo != nil {
		if !slices.Contains(l.Actions, "archive") && !slices.Contains(l.Actions, "download") {
			f := "footage_from"
			if req.FootageFrom == nil {
				f = "footage_to"
			}
			return l, fieldErr(f, "a footage window needs the archive or download action")
		}
		if req.FootageFrom != nil && req.FootageTo != nil && req.FootageTo.Before(*req.FootageFrom) {
			return l, fieldErr("footage_to", "must not be before footage_from")
		}
		if req.FootageFrom != nil {
			t := req.FootageFrom.UTC()
			l.FootageFrom = &t
		}
		if req.FootageTo != nil {
			t := req.FootageTo.UTC()
			l.FootageTo = &t
		}
	}
	if req.MaxViewers < 0 || req.MaxViewers > maxViewersLimit {
		return l, fieldErr("max_viewers", fmt.Sprintf("must be between 0 (no limit) and %d", maxViewersLimit))
	}
	return l, nil
}

// authorizeCreate: an admin needs links:write and a reach (individual
// access) that includes the device; any creator needs `share` on the
// device and every action it puts in the link (admins: per the Policy).
func (s *Service) authorizeCreate(c Creator, l *Link, now time.Time) error {
	creator := CreatorID(c)
	switch {
	case c.Root || c.Admin != "":
		if !s.Policy.MayManage(c, true) {
			return fmt.Errorf("%w: %s may not create links", ErrForbidden, c)
		}
		if !s.Policy.Sees(c, creator, l.Device) {
			// As for every object outside individual access: as if absent.
			return fieldErr("device", fmt.Sprintf("unknown device %q", l.Device))
		}
	case c.Subject == "":
		return fmt.Errorf("%w: anonymous caller", ErrForbidden)
	}
	if !s.Policy.CreatorMay(creator, l.Device, "share", now) {
		return fmt.Errorf("%w: %s may not share %s", ErrForbidden, c, l.Device)
	}
	for _, a := range l.Actions {
		if !s.Policy.CreatorMay(creator, l.Device, a, now) {
			return fmt.Errorf("%w: %s lacks %s on %s, so a link cannot give it", ErrForbidden, c, a, l.Device)
		}
	}
	return nil
}

// Create makes a link and returns its id, url and token (the only time the
// token is shown). Errors: *FieldError, ErrForbidden, or a store error.
func (s *Service) Create(c Creator, req CreateRequest) (Created, error) {
	now := s.Now()
	l, err := s.validate(req, now)
	if err != nil {
		return Created{}, err
	}
	if _, ok := s.Policy.Device(l.Device); !ok {
		return Created{}, fieldErr("device", fmt.Sprintf("unknown device %q", l.Device))
	}
	if err := s.authorizeCreate(c, &l, now); err != nil {
		return Created{}, err
	}
	l.Creator, l.CreatedAt = CreatorID(c), now.UTC()
	k, err := s.reserveKey(l.NotAfter)
	if err != nil {
		return Created{}, err
	}
	for attempt := 0; ; attempt++ {
		l.ID = newLinkID()
		rec := l.Clone()
		err = s.Store.UpdateLink(s.ctx, l.ID, func(cur *Link) (*Link, error) {
			if cur != nil {
				return nil, ErrExists
			}
			r := rec.Clone()
			return &r, nil
		})
		if !errors.Is(err, ErrExists) || attempt >= 3 {
			break
		}
	}
	if err != nil {
		return Created{}, fmt.Errorf("links: store link: %w", err)
	}
	s.set(l.ID, &l)
	tok, err := mint(k, &l)
	if err != nil {
		return Created{}, err
	}
	s.Logger.Info("link created", "link", l.ID, "device", l.Device, "actions", l.Actions, "creator", l.Creator,
		"not_before", l.NotBefore, "not_after", l.NotAfter, "kid", k.kid, "token", Fingerprint(tok))
	return Created{ID: l.ID, URL: s.PublicURL + "/s/" + tok, Token: tok}, nil
}

func newLinkID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// visible: an admin sees the links its sections and reach (individual
// access) include; a viewer only its own.
func (s *Service) visible(c Creator, l *Link, write bool) bool {
	if c.Root || c.Admin != "" {
		return s.Policy.MayManage(c, write) && s.Policy.Sees(c, l.Creator, l.Device)
	}
	return c.Subject != "" && l.Creator == c.Subject
}

// List returns the links the caller may see, newest first (deleted ones
// are gone). It reads the store, so links made on other nodes are listed.
func (s *Service) List(c Creator) ([]LinkView, error) {
	if (c.Root || c.Admin != "") && !s.Policy.MayManage(c, false) {
		return nil, fmt.Errorf("%w: %s may not read links", ErrForbidden, c)
	}
	if !c.Root && c.Admin == "" && c.Subject == "" {
		return nil, fmt.Errorf("%w: anonymous caller", ErrForbidden)
	}
	all, err := s.Store.ListLinks(s.ctx)
	if err != nil {
		return nil, err
	}
	now := s.Now()
	out := make([]LinkView, 0, len(all))
	for i := range all {
		if l := &all[i]; !l.Deleted && s.visible(c, l, false) {
			out = append(out, s.view(l, now))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Get returns one link the caller may see (write: may change), else
// ErrNotFound (a link of someone else is not revealed) or ErrForbidden (an
// admin without the section).
func (s *Service) Get(c Creator, id string, write bool) (LinkView, error) {
	l, err := s.Store.GetLink(s.ctx, id)
	if err != nil {
		return LinkView{}, err
	}
	if l.Deleted {
		return LinkView{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if !s.visible(c, &l, write) {
		if (c.Root || c.Admin != "") && !s.Policy.MayManage(c, write) {
			return LinkView{}, fmt.Errorf("%w: %s may not manage links", ErrForbidden, c)
		}
		return LinkView{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return s.view(&l, s.Now()), nil
}

// Disable stops a link at once (its sessions end through OnChange); it can
// be enabled again.
func (s *Service) Disable(id string) (LinkView, error) { return s.change(id, "disabled", false) }

// Enable lets a disabled link work again (within its window).
func (s *Service) Enable(id string) (LinkView, error) { return s.change(id, "enabled", true) }

// Delete removes a link for good: it cannot be enabled again.
func (s *Service) Delete(id string) error {
	_, err := s.change(id, "deleted", false)
	return err
}

func (s *Service) change(id, what string, enable bool) (LinkView, error) {
	var stored Link
	err := s.Store.UpdateLink(s.ctx, id, func(cur *Link) (*Link, error) {
		if cur == nil || cur.Deleted {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		cur.Enabled = enable
		cur.Deleted = what == "deleted"
		stored = cur.Clone()
		return cur, nil
	})
	if err != nil {
		return LinkView{}, err
	}
	s.set(id, &stored)
	s.Logger.Info("link "+what, "link", id, "device", stored.Device)
	s.OnChange(id)
	return s.view(&stored, s.Now()), nil
}
