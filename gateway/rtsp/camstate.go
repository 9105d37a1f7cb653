package rtsp

import (
	"context"
	"log/slog"
	"sync"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
)

// variantStreams are the gortsplib streams of one variant. tcp is only used
// for signalling (DESCRIBE/SETUP/PLAY): TCP media goes through tcpWriter.
// udp carries media for UDP sessions, fed by one pump reader per variant.
type variantStreams struct {
	variant *stream.Variant
	udp     *gortsplib.ServerStream
	tcp     *gortsplib.ServerStream
	ssrcs   []uint32 // per media, the SSRC announced by the tcp stream
	udpSSRC []uint32 // per media, the udp stream's SSRC

	pumpOnce sync.Once
}

// camState is the RTSP side of one camera stream.
type camState struct {
	stream   *stream.Stream
	variants map[string]*variantStreams
}

func cloneDesc(d *description.Session) *description.Session {
	c := &description.Session{Title: d.Title}
	for _, m := range d.Medias {
		c.Medias = append(c.Medias, &description.Media{Type: m.Type, ID: m.ID, Profile: m.Profile, Formats: m.Formats})
	}
	return c
}

func newCamState(srv *gortsplib.Server, st *stream.Stream) (*camState, error) {
	cs := &camState{stream: st, variants: make(map[string]*variantStreams)}
	for _, v := range []*stream.Variant{st.Full, st.Video} {
		vs := &variantStreams{variant: v}
		vs.udp = &gortsplib.ServerStream{Server: srv, Desc: cloneDesc(v.Desc)}
		vs.tcp = &gortsplib.ServerStream{Server: srv, Desc: cloneDesc(v.Desc)}
		if err := vs.udp.Initialize(); err != nil {
			cs.close()
			return nil, err
		}
		if err := vs.tcp.Initialize(); err != nil {
			vs.udp.Close()
			cs.close()
			return nil, err
		}
		vs.ssrcs, vs.udpSSRC = ssrcsOf(vs.tcp), ssrcsOf(vs.udp)
		cs.variants[v.Name] = vs
	}
	return cs, nil
}

// ssrcsOf returns, per media, the SSRC st sends its first format with.
func ssrcsOf(st *gortsplib.ServerStream) []uint32 {
	stats := st.Stats()
	ssrcs := make([]uint32, 0, len(st.Desc.Medias))
	for _, m := range st.Desc.Medias {
		var ssrc uint32
		if ms, ok := stats.Medias[m]; ok {
			if fs, ok := ms.Formats[m.Formats[0]]; ok {
				ssrc = fs.LocalSSRC
			}
		}
		ssrcs = append(ssrcs, ssrc)
	}
	return ssrcs
}

func (cs *camState) close() {
	for _, vs := range cs.variants {
		vs.udp.Close()
		vs.tcp.Close()
	}
}

// startUDPPump feeds the variant's UDP stream from one stream reader, once,
// for as long as the stream lives; gortsplib fans out to UDP sessions. The
// pump starts at the live edge: each viewer gets its GOP replay from its own
// udpJoin, then joins the pump's packets (udp_join.go).
func (vs *variantStreams) startUDPPump(ctx context.Context, queue int, log *slog.Logger) {
	vs.pumpOnce.Do(func() {
		r := stream.NewReader(queue)
		r.SetPaced() // a keyframe in one burst overflows viewers' UDP sockets
		r.SetLiveOnly()
		if err := vs.variant.AddReader(r); err != nil {
			return
		}
		go func() {
			defer r.Close()
			var pkt rtp.Packet
			err := r.Run(ctx, func(batch []*stream.Packet) error {
				for _, p := range batch {
					if err := pkt.Unmarshal(p.Buf); err != nil {
						continue
					}
					_ = vs.udp.WritePacketRTPWithNTP(vs.udp.Desc.Medias[p.Media], &pkt, p.NTP)
				}
				return nil
			})
			log.Debug("udp pump stopped", "variant", vs.variant.Name, "error", err)
		}()
	})
}
