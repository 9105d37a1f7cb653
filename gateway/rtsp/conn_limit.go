package rtsp

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter caps the open RTSP connections of one client address, so one
// host cannot hold the server's connections (each costs goroutines and
// buffers in gortsplib) however fast it reconnects.
type connLimiter struct {
	max int
	log *slog.Logger

	refused atomic.Uint64

	mu     sync.Mutex               // guards open and warned
	open   map[netip.Addr]int       // open connections per address
	warned map[netip.Addr]time.Time // last refusal logged per address
}

// warnEvery is how often refusals of one address are logged at most.
const warnEvery = time.Minute

func newConnLimiter(max int, log *slog.Logger) *connLimiter {
	return &connLimiter{max: max, log: log, open: map[netip.Addr]int{}, warned: map[netip.Addr]time.Time{}}
}

// acquire takes a slot for a connection from addr; release gives it back.
func (l *connLimiter) acquire(addr net.Addr) (release func(), ok bool) {
	ip := addrIP(addr)
	now := time.Now()
	l.mu.Lock()
	if l.open[ip] >= l.max {
		warn := now.Sub(l.warned[ip]) >= warnEvery
		if warn {
			l.warnedLocked(ip, now)
		}
		l.mu.Unlock()
		l.refused.Add(1)
		if warn {
			l.log.Warn("rtsp: connections refused: too many open from this address (logged once a minute)",
				"remote", ip.String(), "limit", l.max)
		}
		return nil, false
	}
	l.open[ip]++
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		if l.open[ip]--; l.open[ip] <= 0 {
			delete(l.open, ip)
		}
		l.mu.Unlock()
	}, true
}

// warnedLocked records a logged refusal, forgetting stale ones so that the
// map stays as small as the set of addresses refused in the last minute.
func (l *connLimiter) warnedLocked(ip netip.Addr, now time.Time) {
	if len(l.warned) >= 1024 {
		for a, t := range l.warned {
			if now.Sub(t) >= warnEvery {
				delete(l.warned, a)
			}
		}
	}
	l.warned[ip] = now
}

// addrIP is the key a connection is counted under: its client's IPv4
// address (IPv4-mapped IPv6 unmapped), or the /64 of an IPv6 one, since a
// single IPv6 host usually has a whole /64 to pick addresses from.
func addrIP(a net.Addr) netip.Addr {
	var ip netip.Addr
	if t, ok := a.(*net.TCPAddr); ok {
		ip = t.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}
