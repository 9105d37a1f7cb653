package authz

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/internal/backoff"
)

// Following a shared store: the Service applies other nodes' commits from the
// store's change feed (Watcher) to its in-memory model, and when the feed is
// broken it serves from L1 only, within OutageGrace (DESIGN §4, outage policy).

// ReasonStoreUnavailable is the Decision reason while the store is unreachable
// and no cached decision may answer.
const ReasonStoreUnavailable = "store unavailable"

// Reconnect backoff after the feed broke, jittered so that the nodes of a
// cluster do not all reload from a restarted Redis in the same instant.
const (
	followRetryMin = 50 * time.Millisecond
	followRetryMax = 2 * time.Second
)

func (s *Service) startFollowing(w Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	s.followCancel, s.followDone = cancel, make(chan struct{})
	go func() {
		defer close(s.followDone)
		s.follow(ctx, w)
	}()
}

// follow runs until ctx ends: watch from the model's revision; when the feed
// breaks, reload the whole model (with backoff while the store is down) and
// watch again. A reload flushes L1 and publishes an All invalidation, so
// every session is re-checked against what the store holds now.
func (s *Service) follow(ctx context.Context, w Watcher) {
	for {
		s.mu.RLock()
		from := s.rev
		s.mu.RUnlock()
		err := w.Watch(ctx, from, s.applyRemote)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrFeedGap) {
			s.Logger.Warn("authz change feed gap: reloading the model", "rev", from, "error", err)
		} else {
			s.markOutage(err)
		}
		if !s.reloadUntilUp(ctx, !errors.Is(err, ErrFeedGap)) {
			return
		}
	}
}

// reloadUntilUp reloads the model, retrying with backoff, and ends the
// outage once a load succeeded. It reports false when ctx ended first.
func (s *Service) reloadUntilUp(ctx context.Context, wait bool) bool {
	retry := backoff.Backoff{Min: followRetryMin, Max: followRetryMax}
	for {
		if wait && retry.Sleep(ctx, retry.Delay()) != nil {
			return false
		}
		wait = true
		s.writeMu.Lock()
		err := s.load(ctx)
		s.writeMu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			return true // load ended the outage
		}
		s.markOutage(err)
	}
}

// markOutage records the start of an outage (once) and has every session
// re-checked, so each gets a valid_until no later than the end of the grace.
func (s *Service) markOutage(err error) {
	if !s.outageSince.CompareAndSwap(0, s.Now().UnixNano()) {
		return
	}
	s.Logger.Error("authz store unreachable: answering from cached decisions only",
		"grace", time.Duration(s.outageGrace.Load()), "error", err)
	s.mu.RLock()
	rev := s.rev
	s.mu.RUnlock()
	s.publish(Invalidation{Rev: rev, All: true})
}

// Healthy reports whether the Service follows its store: nil, or an error
// wrapping ErrStoreUnavailable while the store's change feed is broken.
func (s *Service) Healthy() error {
	if since := s.outageSince.Load(); since != 0 {
		return fmt.Errorf("%w since %s", ErrStoreUnavailable, nsTime(since).UTC().Format(time.RFC3339))
	}
	return nil
}

// outageLimit is the instant cached decisions stop counting (unix ns), or 0
// when there is no outage.
func (s *Service) outageLimit() int64 {
	since := s.outageSince.Load()
	if since == 0 {
		return 0
	}
	return since + s.outageGrace.Load()
}

// SetOutageGrace changes OutageGrace (a configuration reload); it counts
// from the start of the current outage, if there is one. A d that is not
// positive is ignored. Sessions learn their new limit when they are
// re-checked, which the caller arranges.
func (s *Service) SetOutageGrace(d time.Duration) {
	if d > 0 {
		s.outageGrace.Store(int64(d))
	}
}

// checkDuringOutage answers from L1 only: a hit counts until the outage is
// OutageGrace old and its ValidUntil is capped there; a miss is refused.
func (s *Service) checkDuringOutage(subject, device string, a Action, now time.Time, footage, since int64) Decision {
	ns := now.UnixNano()
	limit := since + s.outageGrace.Load()
	e := s.cache.get(subject, device, ns)
	if e == nil || ns >= limit {
		return Decision{Reason: ReasonStoreUnavailable}
	}
	d := e.decision(a, ns, footage)
	if d.Allowed && (d.ValidUntil.IsZero() || d.ValidUntil.UnixNano() > limit) {
		d.ValidUntil = nsTime(limit)
	}
	return d
}

// applyRemote applies one change from the feed. Our own commits come back
// through the feed too; they are already applied (Rev <= s.rev).
func (s *Service) applyRemote(c Change) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.applyChangeLocked(c)
}

func (s *Service) applyChangeLocked(c Change) error {
	if c.Rev <= s.rev {
		return nil
	}
	if c.Rev != s.rev+1 {
		return fmt.Errorf("%w: at revision %d the feed delivered %d", ErrFeedGap, s.rev, c.Rev)
	}
	changes := make([]change, len(c.Mutations))
	for i, m := range c.Mutations {
		changes[i] = change{kind: m.Kind, id: m.ID}
		if m.Data == nil {
			continue
		}
		obj, err := decodeRecord(m.Kind, m.Data)
		if err != nil {
			// The model cannot follow this revision: reload what the store holds.
			return fmt.Errorf("%w: revision %d: %s/%s: %w", ErrFeedGap, c.Rev, m.Kind, m.ID, err)
		}
		changes[i].obj = obj
	}
	inv := s.apply(changes, c.Rev)
	s.Logger.Debug("authz remote commit", "rev", c.Rev, "changes", len(changes),
		"subjects", len(inv.Subjects), "devices", len(inv.Devices), "pairs", len(inv.Pairs))
	return nil
}

// catchUp brings the model to the store's revision after a lost commit race:
// from the change feed when the store has one, else by reloading. The caller
// holds writeMu.
func (s *Service) catchUp(ctx context.Context) error {
	if w, ok := s.Store.(Watcher); ok {
		changes, err := w.Changes(ctx, s.rev)
		if err == nil {
			for _, c := range changes {
				if err = s.applyChangeLocked(c); err != nil {
					break
				}
			}
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrFeedGap) {
			return err
		}
	}
	return s.load(ctx)
}
