// Package source pulls a camera's media from its upstream (an RTSP URL, or the
// embedded demo clip) and hands RTP packets to a Sink. A Source is run by the
// stream hub, once per camera per node, and restarted with backoff when it fails.
package source

import (
	"context"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"
)

// Sink receives what a source produces. It is implemented by the stream hub's
// per-camera stream; the source never sees readers.
type Sink interface {
	// SetDescription is called once per (re)connection, before any packet of
	// that connection. Medias keep their order for the life of the connection.
	SetDescription(desc *description.Session) error
	// WritePacketRTP hands over one RTP packet of desc.Medias[media]. The sink
	// copies what it keeps: pkt may be reused by the source after the call.
	// ntp is the packet's wall-clock capture time when known (else time.Now()).
	WritePacketRTP(media int, pkt *rtp.Packet, ntp time.Time)
}

// Source is one upstream connection. Run blocks until ctx is done (returns nil)
// or the upstream fails (returns the error); the caller reconnects.
type Source interface {
	Run(ctx context.Context, sink Sink) error
}

// UpstreamHealth is implemented by a Sink that wants to know how the
// upstream connection fares; the stream hub uses it to detect sustained
// packet loss and to suggest TCP.
type UpstreamHealth interface {
	// UpstreamTransport is called when a connection plays, and again when
	// it switches transport: "UDP", "TCP" or "UDP-multicast".
	UpstreamTransport(proto string)
	// PacketsLost is told of RTP packets the upstream lost (gaps in the
	// sequence numbers); it is called from a client goroutine.
	PacketsLost(n uint64)
}
