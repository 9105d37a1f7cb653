package rtsp

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/ntp"

	"github.com/camgate/camgate/gateway/stream"
)

// senderReportPeriod is how often a TCP session gets an RTCP sender report
// per media, which players use to line audio up with video.
const senderReportPeriod = 5 * time.Second

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
	sent     *atomic.Uint64 // the server's bytes-out counter

	hdrs []byte      // 16 bytes of headers per packet of the batch
	vec  [][]byte    // backing array of bufs
	bufs net.Buffers // the batch being written (a field, so WriteTo does not allocate)

	// per media, for sender reports
	last   []srState
	srBuf  []byte
	nextSR time.Time
}

// srState is what a sender report says about one media of one session.
type srState struct {
	ntp     time.Time
	ts      uint32
	packets uint32
	octets  uint32
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
		st := &w.last[p.Media]
		st.ntp, st.ts = p.NTP, p.Timestamp()
		st.packets++
		st.octets += uint32(len(p.Payload()))
	}
	if now := time.Now(); now.After(w.nextSR) && len(vec) > 0 {
		w.nextSR = now.Add(senderReportPeriod)
		vec = w.appendSenderReports(vec)
	}
	w.vec = vec
	if len(vec) == 0 {
		return nil
	}
	w.bufs = vec
	n := 0
	for _, b := range vec {
		n += len(b)
	}
	if w.sent != nil {
		w.sent.Add(uint64(n))
	}
	return w.conn.writeBuffers(&w.bufs, w.timeout)
}

// appendSenderReports adds one interleaved RTCP sender report per media that
// has sent packets (RFC 3550 §6.4.1; 28 bytes, no report blocks).
func (w *tcpWriter) appendSenderReports(vec [][]byte) [][]byte {
	const size = 4 + 28
	if cap(w.srBuf) < size*len(w.last) {
		w.srBuf = make([]byte, size*len(w.last))
	}
	buf := w.srBuf[:cap(w.srBuf)]
	for m, st := range w.last {
		if st.packets == 0 || w.channels[m] == noChannel {
			continue
		}
		b := buf[m*size : m*size+size : m*size+size]
		b[0], b[1], b[2], b[3] = '$', byte(w.channels[m]+1), 0, 28
		b[4], b[5], b[6], b[7] = 0x80, 200, 0, 6 // V=2, PT=SR, length 6 words
		put32(b[8:], w.ssrcs[m])
		n := ntp.Encode(st.ntp)
		put32(b[12:], uint32(n>>32))
		put32(b[16:], uint32(n))
		put32(b[20:], st.ts)
		put32(b[24:], st.packets)
		put32(b[28:], st.octets)
		vec = append(vec, b)
	}
	return vec
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}
