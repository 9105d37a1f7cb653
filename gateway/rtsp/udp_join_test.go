package rtsp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/mediatest"
	"github.com/camgate/camgate/internal/poll"
	"github.com/pion/rtp"
)

// udpViewer is what one gortsplib player over UDP received.
type udpViewer struct {
	first chan []byte // the first video payload
	close func()
	stats func() *gortsplib.ClientStats
	lost  atomic.Uint64

	mu       sync.Mutex
	packets  int
	last     map[*description.Media]uint16
	bytes    map[*description.Media]uint64 // of the packets handed to the player, headers included
	breaks   int                           // packets whose sequence number does not follow the previous one of its media
	breakLog []string
}

func (u *udpViewer) onPacket(m *description.Media, pkt *rtp.Packet) {
	if m.Type == description.MediaTypeVideo {
		select {
		case u.first <- slices.Clone(pkt.Payload):
		default:
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.packets++
	u.bytes[m] += uint64(pkt.MarshalSize())
	if prev, ok := u.last[m]; ok && pkt.SequenceNumber != prev+1 {
		u.breaks++
		u.breakLog = append(u.breakLog, fmt.Sprintf("%s %d after %d", m.Type, pkt.SequenceNumber, prev))
	}
	u.last[m] = pkt.SequenceNumber
}

func (u *udpViewer) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.packets
}

// TestUDPViewersJoiningOneAfterAnother: UDP viewers join a camera with a
// 5 s GOP (video and audio) one after another, each in the middle of a GOP.
// Each one's first video packet is the cached GOP's keyframe, at once (not
// the camera's next one, up to 5 s later), and each one's packets, across
// the hand-over from its own replay to the viewers' shared stream, follow
// one another: nothing lost (the client's loss count), nothing out of order
// (sequence numbers), nothing twice (bytes received against bytes played) — for the viewers already watching too.
func TestUDPViewersJoiningOneAfterAnother(t *testing.T) {
	gop5 := mediatest.Clip{Name: "h264-opus-gop5", Ext: "mkv", AudioCodec: "libopus", KeyInterval: 5,
		Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0"}}
	for _, n := range []int{2, 3} {
		// Mid-GOP: ~1 s of video and audio since the keyframe.
		t.Run(fmt.Sprintf("%d viewers", n), func(t *testing.T) { testUDPViewersJoin(t, gop5, n, 70) })
	}
}

// TestUDPViewerJoiningTenSecondGOP: an NVR camera's 10 s GOP of noise
// (~4.7 Mbit/s, ~420 packets a second): the viewer joins when more of it is cached than a
// viewer's queue holds (1024 packets); its replay's queue is sized for the
// GOP, so it still starts on the cached keyframe.
func TestUDPViewerJoiningTenSecondGOP(t *testing.T) {
	gop10 := mediatest.Clip{Name: "noisy-gop10", Ext: "mkv", KeyInterval: 10,
		Video: []string{"-c:v", "libx264", "-preset", "ultrafast", "-bf", "0", "-vf", "noise=alls=20:allf=t", "-crf", "24"}}
	testUDPViewersJoin(t, gop10, 1, stream.DefaultQueueSize+100)
}

// testUDPViewersJoin has n viewers join one after another, each once the
// cached GOP holds midGOP packets.
func testUDPViewersJoin(t *testing.T, clip mediatest.Clip, n, midGOP int) {
	up := mediatest.StartUpstream(t)
	mediatest.Publish(t, up, clip)
	hub := &stream.Hub{Sources: func(string) (source.Source, error) {
		return source.New(up.URL(), source.Options{Transport: "tcp"})
	}}
	h := newUDPHarness(t, hub, nil)
	st, release, err := hub.Acquire(t.Context(), "cam1")
	if err != nil {
		t.Fatal(err)
	}
	defer release()

	const joinBound = time.Second // the replay's keyframe goes at once; the camera's next is up to 5 s away
	viewers := make([]*udpViewer, n)
	for i := range viewers {
		// Up to two GOPs: the first one may have started before the pull.
		poll.Within(t, 2*poll.Timeout, fmt.Sprintf("a GOP of %d packets", midGOP), func() bool { return st.Full.GOPPackets() >= midGOP })
		u := &udpViewer{first: make(chan []byte, 1), last: make(map[*description.Media]uint16),
			bytes: make(map[*description.Media]uint64)}
		viewers[i] = u
		c, err := mediatest.PlayCountingLoss(t, h.url+"/cam1?token=alice", gortsplib.ProtocolUDP, u.onPacket,
			func(lost uint64) { u.lost.Add(lost) })
		if err != nil {
			t.Fatal(err)
		}
		var once sync.Once
		u.close = func() { once.Do(c.Close) }
		u.stats = c.Stats
		defer u.close()
		select {
		case p := <-u.first:
			if !h264Starts(p) {
				t.Fatalf("viewer %d: the first video packet (NAL type %d) does not start a keyframe", i+1, p[0]&0x1f)
			}
		case <-time.After(joinBound):
			t.Fatalf("viewer %d: no video packet within %v of joining", i+1, joinBound)
		}
	}
	// Well past every hand-over (a replay of ~1 s of GOP takes a fraction
	// of a second): 150 more packets each, ~2 s.
	base := make([]int, n)
	for i, u := range viewers {
		base[i] = u.count()
	}
	poll.Until(t, "150 more packets for each viewer", func() bool {
		for i, u := range viewers {
			if u.count() < base[i]+150 {
				return false
			}
		}
		return true
	})
	for i, u := range viewers {
		u.close()
		// What reached the socket and what the player got: a packet
		// received twice (or too late) is dropped by the client, silently.
		// InboundBytes counts RTCP too: gortsplib's sender reports, 28
		// bytes each.
		for m, ms := range u.stats().Session.Medias {
			rtp := ms.InboundBytes - 28*ms.InboundRTCPPackets
			if got := u.bytes[m]; rtp != got {
				t.Errorf("viewer %d of %d, %s: %d RTP bytes received, %d handed to the player (duplicates)", i+1, n, m.Type, rtp, got)
			}
		}
		u.mu.Lock()
		if lost := u.lost.Load(); lost != 0 || u.breaks != 0 {
			t.Errorf("viewer %d of %d: %d packets lost, %d out of sequence (%v), of %d", i+1, n, lost, u.breaks, u.breakLog, u.packets)
		}
		u.mu.Unlock()
	}
}

// BenchmarkUDPSharedWrite is the shared stream's cost per datagram and
// viewer at the RTP socket: a plain socket, camgate's while nobody joins
// (what a joined viewer costs from then on), and while another viewer
// joins (a map lookup).
func BenchmarkUDPSharedWrite(b *testing.B) {
	recv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer recv.Close()
	go func() { // drain, so the receiver's buffer never fills
		buf := make([]byte, 2048)
		for {
			if _, _, err := recv.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	send, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer send.Close()
	to := recv.LocalAddr().(*net.UDPAddr)
	pkt := make([]byte, 1200)
	pkt[0] = 0x80
	joining := &udpJoins{}
	other := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), 5000)
	joining.add(other, joinPort{j: &udpJoin{}})
	for _, c := range []struct {
		name string
		conn net.PacketConn
	}{
		{"plain socket", send},
		{"nobody joining", &udpConn{UDPConn: send, joins: &udpJoins{}}},
		{"one viewer joining", &udpConn{UDPConn: send, joins: joining}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, err := c.conn.WriteTo(pkt, to); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
