package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// ErrRateLimited is returned while a client is blocked after too many failed
// authentications, and when a subject or camera has too many sessions; edges
// answer 429 (with Retry-After when known).
var ErrRateLimited = errors.New("too many requests")

// RateLimitedError carries how long the client should wait.
type RateLimitedError struct {
	RetryAfter time.Duration
	What       string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("%s: %s, retry after %s", ErrRateLimited, e.What, e.RetryAfter.Round(time.Second))
}

func (e *RateLimitedError) Unwrap() error { return ErrRateLimited }

type remoteKey struct{}

// WithRemote records the client's address in ctx for the admission's per-IP
// limits.
func WithRemote(ctx context.Context, addr net.Addr) context.Context {
	return context.WithValue(ctx, remoteKey{}, addr)
}

type protocolKey struct{}

// WithProtocol records in ctx which edge (ProtocolRTSP, ProtocolHLS,
// ProtocolWebRTC) is admitting the session: some credentials are valid on
// one edge only (a cluster relay token on RTSP).
func WithProtocol(ctx context.Context, protocol string) context.Context {
	return context.WithValue(ctx, protocolKey{}, protocol)
}

// ProtocolOf returns the edge recorded by WithProtocol, or "".
func ProtocolOf(ctx context.Context) string {
	p, _ := ctx.Value(protocolKey{}).(string)
	return p
}

// RemoteIP returns the client IP recorded by WithRemote, or offered by the
// context itself (a fasthttp.RequestCtx has RemoteIP), or "".
func RemoteIP(ctx context.Context) string {
	if a, ok := ctx.Value(remoteKey{}).(net.Addr); ok {
		if host, _, err := net.SplitHostPort(a.String()); err == nil {
			return host
		}
		return a.String()
	}
	if r, ok := ctx.(interface{ RemoteIP() net.IP }); ok {
		return r.RemoteIP().String()
	}
	return ""
}

// FailureLimiter blocks a client IP for the rest of a window once it has
// failed authentication Max times in that window. One mutex; entries are
// swept as windows pass, so memory follows the number of failing clients.
type FailureLimiter struct {
	// Max failures per Window (0 disables the limiter).
	Max    int
	Window time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	mu      sync.Mutex
	entries map[string]*failures
	swept   time.Time
}

type failures struct {
	start time.Time
	n     int
}

func (l *FailureLimiter) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

// Check returns a *RateLimitedError while ip is blocked.
func (l *FailureLimiter) Check(ip string) error {
	if l == nil || l.Max <= 0 || ip == "" {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.entries[ip]
	if f == nil || now.Sub(f.start) >= l.Window || f.n < l.Max {
		return nil
	}
	return &RateLimitedError{RetryAfter: f.start.Add(l.Window).Sub(now), What: "too many failed authentications from " + ip}
}

// Fail counts one failed authentication from ip.
func (l *FailureLimiter) Fail(ip string) {
	if l == nil || l.Max <= 0 || ip == "" {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = make(map[string]*failures)
	}
	if now.Sub(l.swept) > l.Window {
		for k, f := range l.entries {
			if now.Sub(f.start) >= l.Window {
				delete(l.entries, k)
			}
		}
		l.swept = now
	}
	f := l.entries[ip]
	if f == nil || now.Sub(f.start) >= l.Window {
		f = &failures{start: now}
		l.entries[ip] = f
	}
	f.n++
}
