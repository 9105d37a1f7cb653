package mediatest

import (
	"context"
	"net"
	"testing"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// Play plays rawURL with gortsplib's client over proto, which answers
// whichever of Basic or Digest the server challenges with (credentials in
// the URL), handing every RTP packet to onPacket when not nil (on the
// client's goroutine). The caller closes the client; on error there is
// none.
func Play(tb testing.TB, rawURL string, proto gortsplib.Protocol, onPacket func(*description.Media, *rtp.Packet)) (*gortsplib.Client, error) {
	tb.Helper()
	return PlayCountingLoss(tb, rawURL, proto, onPacket, nil)
}

// PlayCountingLoss is Play that also hands onLost (when not nil) the number
// of RTP packets the client found missing, each time it finds some
// (gortsplib's Client.OnPacketsLost: gaps in the sequence numbers).
func PlayCountingLoss(tb testing.TB, rawURL string, proto gortsplib.Protocol, onPacket func(*description.Media, *rtp.Packet), onLost func(uint64)) (*gortsplib.Client, error) {
	tb.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		tb.Fatal(err)
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto}
	if onLost != nil {
		c.OnPacketsLost = onLost
	}
	return play(tb, c, u, onPacket)
}

// PlayFrom is Play over TCP from the local address localIP (any
// 127.0.0.0/8 address is loopback on Linux): the server sees the
// connection come from there.
func PlayFrom(tb testing.TB, rawURL, localIP string, onPacket func(*description.Media, *rtp.Packet)) (*gortsplib.Client, error) {
	tb.Helper()
	u, err := base.ParseURL(rawURL)
	if err != nil {
		tb.Fatal(err)
	}
	proto := gortsplib.ProtocolTCP
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &proto,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}}
	return play(tb, c, u, onPacket)
}

func play(tb testing.TB, c *gortsplib.Client, u *base.URL, onPacket func(*description.Media, *rtp.Packet)) (*gortsplib.Client, error) {
	tb.Helper()
	if err := c.Start(); err != nil {
		tb.Fatal(err)
	}
	desc, _, err := c.Describe(u)
	if err == nil {
		err = c.SetupAll(desc.BaseURL, desc.Medias)
	}
	if err == nil {
		if onPacket != nil {
			c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) { onPacket(m, pkt) })
		}
		_, err = c.Play(nil)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}
