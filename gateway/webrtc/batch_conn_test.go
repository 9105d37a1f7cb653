package webrtc

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func readAll(t *testing.T, c *net.UDPConn, n int) [][]byte {
	t.Helper()
	var got [][]byte
	buf := make([]byte, 4096)
	for len(got) < n {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(got), n, err)
		}
		got = append(got, append([]byte(nil), buf[:k]...))
	}
	return got
}

func TestBatchConnQueuesInsideAWindowAndKeepsOrder(t *testing.T) {
	bc := newBatchConn(listenUDP(t))
	if bc.bw == nil {
		t.Skip("no sendmmsg here")
	}
	viewers := []*net.UDPConn{listenUDP(t), listenUDP(t), listenUDP(t)}
	addr := func(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }
	// Mostly one size (a frame's packets), some shorter (a frame's last),
	// some longer: runs of GSO segments are cut where the size changes.
	dgram := func(v, i int) []byte {
		d := []byte(fmt.Sprintf("viewer %d datagram %03d ", v, i))
		switch {
		case i%7 == 6:
		case i%11 == 10:
			d = append(d, bytes.Repeat([]byte{'+'}, 1300)...)
		default:
			d = append(d, bytes.Repeat([]byte{'.'}, 1000)...)
		}
		return d
	}

	// Outside a window: sent at once.
	if _, err := bc.WriteToAddrPort(dgram(0, 0), addr(viewers[0])); err != nil || bc.n != 0 {
		t.Fatalf("outside a window: err %v, %d queued", err, bc.n)
	}
	readAll(t, viewers[0], 1)

	// Inside: 100 datagrams per viewer, interleaved as a fan-out writes
	// them (more than one sendmmsg's worth), plus one larger than a slot.
	bc.begin()
	big := bytes.Repeat([]byte{'x'}, 2000)
	for i := range 100 {
		for v, c := range viewers {
			if v == 1 && i == 50 {
				if _, err := bc.WriteTo(big, c.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			if n, err := bc.WriteToAddrPort(dgram(v, i), addr(c)); err != nil || n != len(dgram(v, i)) {
				t.Fatalf("queue: %d, %v", n, err)
			}
		}
	}
	if bc.n == 0 {
		t.Fatal("nothing queued inside the window")
	}
	sent := bc.messages.Load()
	bc.end()
	if bc.n != 0 {
		t.Fatalf("%d datagrams left queued after the window", bc.n)
	}
	t.Logf("gso %v: %d messages for 301 datagrams", bc.gso.Load(), bc.messages.Load()-sent)
	if sent := bc.messages.Load() - sent; bc.gso.Load() && sent >= 300 {
		t.Fatalf("with GSO, %d messages for 301 datagrams", sent)
	}
	for v, c := range viewers {
		want := 100
		if v == 1 {
			want++
		}
		got := readAll(t, c, want)
		i := 0
		for _, d := range got {
			if bytes.Equal(d, big) {
				if v != 1 || i != 50 {
					t.Fatalf("viewer %d: the large datagram came after %d others", v, i)
				}
				continue
			}
			if !bytes.Equal(d, dgram(v, i)) {
				t.Fatalf("viewer %d: got %q, want %q", v, d, dgram(v, i))
			}
			i++
		}
	}
}

func TestBatchConnSkipsARefusedDatagram(t *testing.T) {
	bc := newBatchConn(listenUDP(t))
	if bc.bw == nil {
		t.Skip("no sendmmsg here")
	}
	v := listenUDP(t)
	to := v.LocalAddr().(*net.UDPAddr).AddrPort()
	bc.begin()
	_, _ = bc.WriteToAddrPort([]byte("one"), to)
	// Port 0: the kernel refuses these (EINVAL); with GSO the two go as
	// one message, refused, then tried one by one.
	bad := netip.MustParseAddrPort("127.0.0.1:0")
	_, _ = bc.WriteToAddrPort([]byte("refused"), bad)
	_, _ = bc.WriteToAddrPort([]byte("refused"), bad)
	_, _ = bc.WriteToAddrPort([]byte("two"), to)
	gso := bc.gso.Load()
	bc.end()
	got := readAll(t, v, 2)
	if string(got[0]) != "one" || string(got[1]) != "two" || bc.failed.Load() != 2 {
		t.Fatalf("got %q, %d failed", got, bc.failed.Load())
	}
	if bc.gso.Load() != gso {
		t.Fatal("a refused destination turned GSO off")
	}
}

// The default mux address (":8189") is a dual-stack IPv6 socket: batched
// and GSO sends reach IPv4 viewers (v4-mapped) and IPv6 ones from it.
func TestBatchConnOnADualStackSocket(t *testing.T) {
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	bc := newBatchConn(c.(*net.UDPConn))
	if bc.bw == nil {
		t.Skip("no sendmmsg here")
	}
	v4 := listenUDP(t)
	viewers := []*net.UDPConn{v4}
	if v6, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback}); err == nil {
		t.Cleanup(func() { _ = v6.Close() })
		viewers = append(viewers, v6)
	}
	bc.begin()
	for i := range 3 {
		for _, v := range viewers {
			if _, err := bc.WriteToAddrPort([]byte(fmt.Sprintf("datagram %d", i)), v.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
		}
	}
	bc.end()
	for _, v := range viewers {
		if got := readAll(t, v, 3); string(got[2]) != "datagram 2" {
			t.Fatalf("%v got %q", v.LocalAddr(), got)
		}
	}
	if n := bc.failed.Load(); n != 0 {
		t.Fatalf("%d datagrams refused", n)
	}
}
