package events

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/camgate/camgate/gateway/access"
)

// Authorizer decides who sees an event: the enforcement point
// (access.Service.SeesEvent).
type Authorizer interface {
	// SeesEvent reports whether p may see now an event on device
	// (addressed to recipient when that is set).
	SeesEvent(p access.Principal, device, recipient string) bool
}

// Service is the feed of one node. Set the fields, call Initialize, then
// use it from any goroutine; Close ends every open stream.
type Service struct {
	// Store keeps the events (required).
	Store Store
	// Access decides delivery (required).
	Access Authorizer
	// Retention is how long events are kept (default 7 days); older ones
	// are pruned every PruneEvery (default 1 h) and at start.
	Retention, PruneEvery time.Duration
	// Heartbeat is the SSE keep-alive comment interval (default 15 s).
	Heartbeat time.Duration
	// StreamQueue bounds the events waiting for one slow stream (default
	// 256); a stream that falls further behind is ended, and its client
	// resumes from its Last-Event-ID.
	StreamQueue int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default: discard).
	Logger *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex // guards subs
	subs map[*subscriber]struct{}
}

// subscriber is one open stream; the tail goroutine fills ch, the stream's
// writer drains it.
type subscriber struct {
	device string // "" = every device
	ch     chan Event
	lagged chan struct{} // closed when ch overflowed
	once   sync.Once
}

// Initialize checks the fields, prunes, and starts following the store.
func (s *Service) Initialize() error {
	if s.Store == nil || s.Access == nil {
		return errors.New("events: Store and Access are required")
	}
	if s.Retention <= 0 {
		s.Retention = 7 * 24 * time.Hour
	}
	if s.PruneEvery <= 0 {
		s.PruneEvery = time.Hour
	}
	if s.Heartbeat <= 0 {
		s.Heartbeat = 15 * time.Second
	}
	if s.StreamQueue <= 0 {
		s.StreamQueue = 256
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.subs = map[*subscriber]struct{}{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	last, err := s.Store.Last(s.ctx)
	if err != nil {
		s.cancel()
		return err
	}
	s.wg.Add(2)
	go s.tail(last)
	go s.prune()
	return nil
}

// Close ends every stream and stops following the store (a store whose
// Wait blocks until an event arrives is unblocked).
func (s *Service) Close() {
	s.cancel()
	if u, ok := s.Store.(interface{ Unblock() }); ok {
		u.Unblock()
	}
	s.wg.Wait()
}

// Publish stores ev (its Time defaults to now); every node's streams get
// it from the store.
func (s *Service) Publish(ctx context.Context, ev Event) error {
	if ev.Time.IsZero() {
		ev.Time = s.Now().UTC()
	}
	return s.Store.Append(ctx, &ev)
}

// tail follows the store from last and hands each new event to the open
// streams. One goroutine per node: a Redis stream is read once per node,
// whatever the number of viewers.
func (s *Service) tail(last string) {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		evs, err := s.Store.Wait(s.ctx, last, 256)
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.Logger.Warn("events: following the feed failed; retrying", "error", err)
			select {
			case <-s.ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for _, ev := range evs {
			last = ev.ID
			s.broadcast(ev)
		}
	}
}

func (s *Service) broadcast(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sub := range s.subs {
		if sub.device != "" && sub.device != ev.Device {
			continue
		}
		select {
		case sub.ch <- ev:
		default:
			sub.once.Do(func() { close(sub.lagged) })
		}
	}
}

func (s *Service) subscribe(device string) *subscriber {
	sub := &subscriber{device: device, ch: make(chan Event, s.StreamQueue), lagged: make(chan struct{})}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub
}

func (s *Service) unsubscribe(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// Streams returns how many streams are open on this node.
func (s *Service) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

func (s *Service) prune() {
	defer s.wg.Done()
	t := time.NewTicker(s.PruneEvery)
	defer t.Stop()
	for {
		if err := s.Store.Prune(s.ctx, s.Now().Add(-s.Retention)); err != nil && s.ctx.Err() == nil {
			s.Logger.Warn("events: pruning failed", "error", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Page is one page of GET /api/v1/events.
type Page struct {
	Events []Event `json:"events"`
	// Next is the cursor of the next page (?after=); it moves past events
	// the caller may not see too.
	Next string `json:"next"`
}

// List returns up to limit events after the cursor that p may see now,
// on device when it is set. It reads at most 10 pages' worth of the feed
// per call, so a caller who sees little of a busy feed pages on with Next.
func (s *Service) List(ctx context.Context, p access.Principal, device, after string, limit int) (Page, error) {
	page := Page{Events: []Event{}, Next: after}
	for scanned := 0; len(page.Events) < limit && scanned < 10*limit; {
		batch, err := s.Store.After(ctx, page.Next, limit)
		if err != nil {
			return Page{}, err
		}
		if len(batch) == 0 {
			break
		}
		for _, ev := range batch {
			page.Next = ev.ID
			scanned++
			if s.visible(p, device, &ev) {
				page.Events = append(page.Events, ev)
				if len(page.Events) == limit {
					break
				}
			}
		}
	}
	return page, nil
}

// visible decides one event for one principal, now.
func (s *Service) visible(p access.Principal, device string, ev *Event) bool {
	if device != "" && ev.Device != device {
		return false
	}
	return s.Access.SeesEvent(p, ev.Device, ev.Recipient)
}
