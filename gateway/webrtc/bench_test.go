package webrtc

import (
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/gateway/stream"
)

// sinkConn is a viewer's UDP socket that counts and drops RTP instead of
// handing it to pion (the viewer still completes ICE and DTLS), and that
// stops reading altogether while paused, so that the benchmark measures
// the sending side only: the kernel drops what the viewer does not read.
type sinkConn struct {
	net.PacketConn
	rtp    atomic.Int64
	paused atomic.Bool
	resume chan struct{}
}

func (c *sinkConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		if c.paused.Load() {
			<-c.resume
		}
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err == nil && n >= 2 && p[0]>>6 == 2 && (p[1] < 192 || p[1] > 223) {
			c.rtp.Add(1) // RTP (RTCP packet types are 192-223)
			continue
		}
		return n, addr, err
	}
}

// sinkViewer connects a viewer whose RTP is dropped on arrival to the
// server, through the same negotiation as a POST.
func sinkViewer(b *testing.B, s *Server, vt *variantTracks) *sinkConn {
	b.Helper()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	sink := &sinkConn{PacketConn: udp, resume: make(chan struct{})}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: sink})
	b.Cleanup(func() { _ = mux.Close() })
	var se webrtc.SettingEngine
	se.LoggerFactory = pionLoggers{slog.New(slog.DiscardHandler)}
	se.SetICEUDPMux(mux)
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		b.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pc.Close() })
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		b.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		b.Fatal(err)
	}
	<-gathered
	p := &peer{s: s, id: session.NewID(), vt: vt}
	answer, err := p.negotiate(pc.LocalDescription().SDP, offerInfo{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.pc.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		b.Fatal(err)
	}
	return sink
}

// BenchmarkSharedTrackWrite measures the per-packet cost of the WebRTC hot
// path: a frame of 8 H264 packets (1000-byte payloads) of a variant written
// as one pump batch to the shared track, which pion encrypts (SRTP AES-GCM)
// for every bound peer through the sender-report interceptor, and the mux
// socket sends with sendmmsg, each peer's packets of the frame as one GSO
// message (gso=off: one message per packet). ns/peer and cpu-ns/peer are
// the wall and CPU time one packet costs per viewer (the viewers are
// paused: the kernel drops what they do not read).
func BenchmarkSharedTrackWrite(b *testing.B) {
	const framePackets = 8
	for _, n := range []int{1, 10, 50} {
		for _, gso := range []bool{true, false} {
			b.Run(fmt.Sprintf("peers=%d/gso=%v", n, gso), func(b *testing.B) {
				h := newHarness(b)
				if !h.srv.batch.gso.Load() && gso {
					b.Skip("the kernel has no UDP GSO")
				}
				h.srv.batch.gso.Store(gso)
				desc := &description.Session{Medias: []*description.Media{
					{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}}},
				}}
				vt, err := newVariantTracks(h.srv, "bench", "cam1", stream.VariantVideo, desc)
				if err != nil {
					b.Fatal(err)
				}
				// Not pumped from a stream: the benchmark writes itself.
				vt.users, vt.cancel = n, func() {}
				sinks := make([]*sinkConn, n)
				for i := range sinks {
					sinks[i] = sinkViewer(b, h.srv, vt)
				}
				payload := make([]byte, 1000)
				payload[0] = 0x41 // non-IDR slice
				batch := make([]*stream.Packet, framePackets)
				for i := range batch {
					batch[i] = streamPacket(0, 0, i == framePackets-1, payload)
				}
				seq, ts := uint16(0), uint32(0)
				write := func() {
					ts += 3600
					for _, p := range batch {
						seq++
						b := p.Buf
						b[2], b[3] = byte(seq>>8), byte(seq)
						b[4], b[5], b[6], b[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
					}
					vt.writeBatch(batch)
				}
				// Every viewer is bound (receives) before measuring.
				deadline := time.Now().Add(20 * time.Second)
				for i := 0; i < n; {
					write()
					if sinks[i].rtp.Load() > 0 {
						i++
						continue
					}
					if time.Now().After(deadline) {
						b.Fatalf("viewer %d receives nothing", i)
					}
					time.Sleep(time.Millisecond)
				}
				// Viewers stay connected for the ICE failure timeout (15 s)
				// without reading: longer than any -benchtime worth using.
				for _, s := range sinks {
					s.paused.Store(true)
				}
				b.ReportAllocs()
				cpu0 := processCPU(b)
				b.ResetTimer()
				for range b.N {
					write()
				}
				b.StopTimer()
				for _, s := range sinks {
					close(s.resume)
				}
				per := float64(b.N) * framePackets * float64(n)
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/peer")
				// CPU rather than wall time: on a shared machine the
				// latter counts waiting for a core.
				b.ReportMetric(float64(processCPU(b)-cpu0)/per, "cpu-ns/peer")
			})
		}
	}
}

// processCPU is the process's user and system CPU time so far, in ns.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
