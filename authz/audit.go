package authz

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log: who did or tried what, when, and
// why it was allowed or denied.
type AuditEntry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Who     string    `json:"who"`  // "root", "admin:ops", "subject:alice", "link:…"
	What    string    `json:"what"` // "PUT grants/g1", "live cam1", "ptz cam1 move"
	Allowed bool      `json:"allowed"`
	Why     string    `json:"why,omitempty"`
}

// AuditStore is implemented by stores that keep the audit log across
// restarts (BoltStore does). AppendAudit persists entries and keeps only the
// newest keep; LoadAudit returns up to limit newest entries, oldest first.
type AuditStore interface {
	AppendAudit(ctx context.Context, entries []AuditEntry, keep int) error
	LoadAudit(ctx context.Context, limit int) ([]AuditEntry, error)
}

// auditLog keeps the newest entries in a ring for paging and hands new ones
// to a writer goroutine that persists them in batches, so recording a denial
// on the media path never waits for a disk. It has its own mutex: the
// gateway records from many goroutines.
type auditLog struct {
	mu      sync.Mutex
	entries []AuditEntry
	start   int // index of the oldest entry when full
	seq     uint64
	pending []AuditEntry
	limit   int // entries kept; immutable

	store AuditStore // nil: memory only
	wake  chan struct{}
	quit  chan struct{}
	done  chan struct{}
}

func newAuditLog(n int, store AuditStore) *auditLog {
	return &auditLog{entries: make([]AuditEntry, 0, n), limit: n, store: store,
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// restore loads persisted entries so paging and sequence numbers continue.
func (l *auditLog) restore(ctx context.Context) error {
	if l.store == nil {
		return nil
	}
	es, err := l.store.LoadAudit(ctx, l.limit)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries, l.start = append(l.entries[:0], es...), 0
	if len(es) > 0 {
		l.seq = es[len(es)-1].Seq
	}
	return nil
}

func (l *auditLog) add(e AuditEntry) {
	l.mu.Lock()
	l.seq++
	e.Seq = l.seq
	if len(l.entries) < cap(l.entries) {
		l.entries = append(l.entries, e)
	} else {
		l.entries[l.start] = e
		l.start = (l.start + 1) % len(l.entries)
	}
	if l.store != nil && len(l.pending) < 4*l.limit {
		l.pending = append(l.pending, e)
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run persists pending entries until quit, then flushes what is left.
func (l *auditLog) run(log func(error)) {
	defer close(l.done)
	if l.store == nil {
		<-l.quit
		return
	}
	for {
		stop := false
		select {
		case <-l.quit:
			stop = true
		case <-l.wake:
		}
		l.mu.Lock()
		batch := l.pending
		l.pending = nil
		l.mu.Unlock()
		if len(batch) > 0 {
			if err := l.store.AppendAudit(context.Background(), batch, l.limit); err != nil {
				log(err)
			}
		}
		if stop {
			return
		}
	}
}

func (l *auditLog) stop() {
	close(l.quit)
	<-l.done
}

// page returns up to limit entries with Seq > after that match keep, oldest
// first, and the cursor for the next page ("" when there is none).
func (l *auditLog) page(after uint64, limit int, keep func(*AuditEntry) bool) ([]AuditEntry, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []AuditEntry{}
	n := len(l.entries)
	for i := range n {
		e := &l.entries[(l.start+i)%n]
		if e.Seq <= after || !keep(e) {
			continue
		}
		if len(out) == limit {
			return out, strconv.FormatUint(out[len(out)-1].Seq, 10)
		}
		out = append(out, *e)
	}
	return out, ""
}

// RecordAudit appends an entry (the gateway records denials and PTZ commands).
// Time defaults to the service clock. It never blocks on disk.
func (s *Service) RecordAudit(e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = s.Now()
	}
	s.audit.add(e)
}
