package rtsp

import (
	"context"
	"net"
	"time"

	"github.com/camgate/camgate/gateway/stream"
)

// noChannel marks a media the session did not set up.
const noChannel = -1

// tcpWriter sends a variant's packets to one RTSP-over-TCP session: each
// batch the reader hands over goes out in one writev of interleaved frames.
// The shared packet bytes are never modified; the 4-byte interleaved header
// and the 12-byte RTP header (with the session's SSRC) are written into the
// writer's own scratch space. Nothing is allocated per packet.
type tcpWriter struct {
	conn     *mediaConn
	reader   *stream.Reader
	channels []int    // per variant media: interleaved RTP channel or noChannel
	ssrcs    []uint32 // per variant media
	timeout  time.Duration

	hdrs []byte      // 16 bytes of headers per packet of the batch
	vec  [][]byte    // backing array of bufs
	bufs net.Buffers // the batch being written (a field, so WriteTo does not allocate)
}

func (w *tcpWriter) run(ctx context.Context) error {
	return w.reader.Run(ctx, w.writeBatch)
}

func (w *tcpWriter) writeBatch(batch []*stream.Packet) error {
	if need := len(batch) * 16; cap(w.hdrs) < need {
		w.hdrs = make([]byte, need)
	}
	hdrs := w.hdrs[:cap(w.hdrs)]
	vec := w.vec[:0]
	for i, p := range batch {
		if p.Media >= len(w.channels) || w.channels[p.Media] == noChannel {
			continue
		}
		h := hdrs[i*16 : i*16+16 : i*16+16]
		n := len(p.Buf)
		h[0], h[1], h[2], h[3] = '$', byte(w.channels[p.Media]), byte(n>>8), byte(n)
		copy(h[4:16], p.Header())
		s := w.ssrcs[p.Media]
		h[12], h[13], h[14], h[15] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
		vec = append(vec, h, p.Payload())
	}
	w.vec = vec
	if len(vec) == 0 {
		return nil
	}
	w.bufs = vec
	return w.conn.writeBuffers(&w.bufs, w.timeout)
}
