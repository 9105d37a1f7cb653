package rtsp

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/camgate/camgate/internal/poll"
)

// options sends an OPTIONS request on c and returns the status line of the
// answer ("" when the connection is closed instead).
func options(t *testing.T, c net.Conn, r *bufio.Reader, cseq string) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("OPTIONS rtsp://camgate/cam1 RTSP/1.0\r\nCSeq: " + cseq + "\r\n\r\n")); err != nil {
		return ""
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return ""
	}
	for { // skip the headers
		l, err := r.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	return strings.TrimSpace(line)
}

// closedWithin reports whether the server closes c within d (reading
// returns EOF or a reset rather than our own deadline).
func closedWithin(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSilentConnectionsAreClosed: a connection that sends no request, or no
// further request, is closed after IdleTimeout; gortsplib alone keeps the
// first kind forever and the second for 60 s.
func TestSilentConnectionsAreClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	h := newHarnessConfig(t, nil, func(s *Server) { s.IdleTimeout = idle })
	cases := []struct {
		name     string
		requests int
	}{
		{"never sends a request", 0},
		{"silent after one request", 1},
		{"silent after three requests", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := dialFrom(t, "127.0.0.1", h.srv.Addr().String())
			r := bufio.NewReader(conn)
			for i := range c.requests {
				if got := options(t, conn, r, string(rune('1'+i))); !strings.HasSuffix(got, "200 OK") {
					t.Fatalf("OPTIONS %d: %q", i, got)
				}
			}
			start := time.Now()
			if !closedWithin(conn, r, 10*time.Second) {
				t.Fatalf("a silent connection is still open after 10 s (idle timeout %v)", idle)
			}
			if el := time.Since(start); el < idle/2 {
				t.Fatalf("closed after %v, before the idle timeout", el)
			}
		})
	}
}

// TestConnectionsPerAddressAreCapped: beyond MaxConnsPerIP a connection from
// the same address is closed at once, while another address is served, and
// a freed slot can be used again.
func TestConnectionsPerAddressAreCapped(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("this test needs 127.0.0.2 on the loopback interface: %v", err)
	}
	l.Close()
	const limit = 3
	h := newHarnessConfig(t, nil, func(s *Server) { s.MaxConnsPerIP, s.IdleTimeout = limit, time.Minute })
	addr := h.srv.Addr().String()
	var held []net.Conn
	for i := range limit {
		c := dialFrom(t, "127.0.0.1", addr)
		if got := options(t, c, bufio.NewReader(c), "1"); !strings.HasSuffix(got, "200 OK") {
			t.Fatalf("connection %d within the cap: %q", i, got)
		}
		held = append(held, c)
	}
	over := dialFrom(t, "127.0.0.1", addr)
	start := time.Now()
	if !closedWithin(over, bufio.NewReader(over), 5*time.Second) {
		t.Fatal("a connection beyond the cap was not closed")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("a connection beyond the cap was closed only after %v", el)
	}
	other := dialFrom(t, "127.0.0.2", addr)
	if got := options(t, other, bufio.NewReader(other), "1"); !strings.HasSuffix(got, "200 OK") {
		t.Fatalf("another address: %q", got)
	}
	if n := h.srv.ConnsRefused(); n != 1 {
		t.Fatalf("ConnsRefused = %d, want 1", n)
	}
	held[0].Close()
	poll.Until(t,

		"a freed slot to be usable", func() bool {
			c := dialFrom(t, "127.0.0.1", addr)
			defer c.Close()
			return strings.HasSuffix(options(t, c, bufio.NewReader(c), "1"), "200 OK")
		})

}

// TestPlayingSessionOutlivesIdleTimeout: a viewer playing over TCP sends
// (almost) nothing back; its connection is not idle and keeps playing for
// many idle timeouts.
func TestPlayingSessionOutlivesIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	h := newHarnessConfig(t, nil, func(s *Server) { s.IdleTimeout, s.MaxConnsPerIP = idle, 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	// 75 frames of the 25 fps demo: 3 s of playback, 15 idle timeouts.
	cmd := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", h.url+"/cam1?token=alice",
		"-frames:v", "75", "-f", "null", "-")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	if el := time.Since(start); el < 10*idle {
		t.Fatalf("playback ended after %v: the playing connection was closed as idle", el)
	}
}

// TestAddrIP: connections are counted per IPv4 address and per IPv6 /64.
func TestAddrIP(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	cases := []struct {
		name string
		a, b net.Addr
		same bool
	}{
		{"same IPv4, other port", tcp("192.0.2.1:1000"), tcp("192.0.2.1:2000"), true},
		{"other IPv4", tcp("192.0.2.1:1000"), tcp("192.0.2.2:1000"), false},
		{"IPv4-mapped IPv6 is the IPv4 address", tcp("[::ffff:192.0.2.1]:1000"), tcp("192.0.2.1:1000"), true},
		{"same IPv6 /64", tcp("[2001:db8:1:2::1]:1000"), tcp("[2001:db8:1:2:ffff::9]:1000"), true},
		{"other IPv6 /64", tcp("[2001:db8:1:2::1]:1000"), tcp("[2001:db8:1:3::1]:1000"), false},
		{"zone ignored", tcp("[fe80::1%eth0]:1000"), tcp("[fe80::2%eth1]:1000"), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := addrIP(c.a) == addrIP(c.b); got != c.same {
				t.Fatalf("addrIP(%v)=%v, addrIP(%v)=%v: same=%v, want %v", c.a, addrIP(c.a), c.b, addrIP(c.b), got, c.same)
			}
		})
	}
}
