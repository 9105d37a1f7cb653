package session

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

func TestFailureLimiterBlocksThenForgives(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &FailureLimiter{Max: 3, Window: time.Minute, Now: func() time.Time { return now }}
	for range 3 {
		if err := l.Check("10.0.0.1"); err != nil {
			t.Fatalf("blocked too early: %v", err)
		}
		l.Fail("10.0.0.1")
	}
	err := l.Check("10.0.0.1")
	var rl *RateLimitedError
	if !errors.As(err, &rl) || !errors.Is(err, ErrRateLimited) || rl.RetryAfter != time.Minute {
		t.Fatalf("after 3 failures: %v", err)
	}
	if err := l.Check("10.0.0.2"); err != nil {
		t.Fatalf("another client blocked: %v", err)
	}
	now = now.Add(time.Minute)
	if err := l.Check("10.0.0.1"); err != nil {
		t.Fatalf("still blocked after the window: %v", err)
	}
}

func TestRemoteIP(t *testing.T) {
	ctx := WithRemote(context.Background(), &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 5000})
	if ip := RemoteIP(ctx); ip != "192.0.2.7" {
		t.Fatalf("RemoteIP = %q", ip)
	}
	if ip := RemoteIP(context.Background()); ip != "" {
		t.Fatalf("RemoteIP of a bare context = %q", ip)
	}
}
