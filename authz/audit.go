package authz

import (
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
	Rev     uint64    `json:"rev,omitempty"` // store revision of a write
}

// auditLog keeps the newest entries in a ring. It has its own mutex: the
// gateway records denials from many goroutines.
type auditLog struct {
	mu      sync.Mutex
	entries []AuditEntry
	start   int // index of the oldest entry when full
	seq     uint64
}

func newAuditLog(n int) *auditLog { return &auditLog{entries: make([]AuditEntry, 0, n)} }

func (l *auditLog) add(e AuditEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	e.Seq = l.seq
	if len(l.entries) < cap(l.entries) {
		l.entries = append(l.entries, e)
		return
	}
	l.entries[l.start] = e
	l.start = (l.start + 1) % len(l.entries)
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
// Time defaults to the service clock.
func (s *Service) RecordAudit(e AuditEntry) {
	if e.Time.IsZero() {
		e.Time = s.Now()
	}
	s.audit.add(e)
}
