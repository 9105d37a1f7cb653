package rtsp

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t testing.TB) (*net.TCPConn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); accepted <- c }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c
}

func newTestStream(t testing.TB) *stream.Stream {
	st := stream.New("cam1")
	err := st.SetDescription(&description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.Opus{PayloadTyp: 111, ChannelCount: 2}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWriterFramesPackets checks the bytes a viewer receives: interleaved
// frames on the session's channels, its SSRC, the payload untouched, and a
// sender report on the RTCP channel.
func TestWriterFramesPackets(t *testing.T) {
	st := newTestStream(t)
	server, client := tcpPair(t)
	w := &tcpWriter{
		conn:     &mediaConn{Conn: server, tcp: server},
		reader:   stream.NewReader(0),
		channels: []int{4, noChannel}, // audio not set up by this viewer
		ssrcs:    []uint32{0xdeadbeef, 0x01020304},
		timeout:  time.Second,
		last:     make([]srState, 2),
	}
	if err := st.Full.AddReader(w.reader); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.run(ctx) }()
	payload := []byte{0x65, 1, 2, 3, 4}
	st.WritePacketRTP(0, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: 9000, Marker: true}, Payload: payload}, time.Now())
	st.WritePacketRTP(1, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, Timestamp: 100}, Payload: []byte{9, 9}}, time.Now())

	br := bufio.NewReader(client)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	var gotRTP, gotSR bool
	for !gotRTP || !gotSR {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("reading frames: %v (rtp=%v sr=%v)", err, gotRTP, gotSR)
		}
		if hdr[0] != '$' {
			t.Fatalf("not an interleaved frame: %x", hdr)
		}
		body := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(br, body); err != nil {
			t.Fatal(err)
		}
		switch hdr[1] {
		case 4:
			var pkt rtp.Packet
			if err := pkt.Unmarshal(body); err != nil {
				t.Fatal(err)
			}
			if pkt.SSRC != 0xdeadbeef || pkt.Timestamp != 9000 || !pkt.Marker || string(pkt.Payload) != string(payload) {
				t.Fatalf("packet %+v", pkt)
			}
			gotRTP = true
		case 5:
			if body[1] != 200 || binary.BigEndian.Uint32(body[4:]) != 0xdeadbeef || binary.BigEndian.Uint32(body[16:]) != 9000 {
				t.Fatalf("sender report %x", body)
			}
			gotSR = true
		default:
			t.Fatalf("frame on channel %d: the viewer did not set up that media", hdr[1])
		}
	}
}

// BenchmarkWriteBatch writes a batch of 32 video packets to a loopback TCP
// viewer with one writev; allocs/op must be 0.
func BenchmarkWriteBatch(b *testing.B) {
	server, client := tcpPair(b)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	st := newTestStream(b)
	r := stream.NewReader(64)
	if err := st.Video.AddReader(r); err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 1200)
	payload[0] = 0x65
	for i := range 32 {
		st.WritePacketRTP(0, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: uint32(i)}, Payload: payload}, time.Now())
	}
	var batch []*stream.Packet
	ctx, cancel := context.WithCancel(context.Background())
	_ = r.Run(ctx, func(pk []*stream.Packet) error {
		for _, p := range pk {
			q := &stream.Packet{Media: p.Media, Buf: append([]byte(nil), p.Buf...), NTP: p.NTP}
			batch = append(batch, q)
		}
		cancel()
		return context.Canceled
	})
	w := &tcpWriter{conn: &mediaConn{Conn: server, tcp: server}, channels: []int{0}, ssrcs: []uint32{1},
		timeout: time.Second, last: make([]srState, 1)}
	b.SetBytes(int64(len(batch) * 1216))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := w.writeBatch(batch); err != nil {
			b.Fatal(err)
		}
	}
}
