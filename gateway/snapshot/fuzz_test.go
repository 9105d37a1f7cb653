package snapshot

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/pion/rtp"

	"github.com/camgate/camgate/gateway/stream"
)

// A camera's RTP payloads are foreign input: whatever a keyframe access
// unit's packets hold (split at the bytes given by cuts), turning it into
// Annex-B never panics, and what comes out starts with a start code.
func FuzzKeyframeOf(f *testing.F) {
	f.Add(true, []byte{0x65, 0x88, 0x84, 0x00}, []byte{2})
	f.Add(true, []byte{0x7c, 0x85, 0x88, 0x84, 0x7c, 0x45, 0x00}, []byte{3})            // FU-A start, end
	f.Add(true, []byte{0x18, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x65, 0x88}, []byte{}) // STAP-A
	f.Add(false, []byte{0x26, 0x01, 0xaf, 0x00}, []byte{})                              // H265 IDR
	f.Add(false, []byte{0x62, 0x01, 0x93, 0xaf, 0x62, 0x01, 0x53, 0x00}, []byte{4})
	f.Fuzz(func(t *testing.T, isH264 bool, payload, cuts []byte) {
		var fm format.Format = &format.H265{PayloadTyp: 96}
		if isH264 {
			fm = &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: []byte{0x67, 0x42, 0xc0, 0x1e}, PPS: []byte{0x68, 0xce}}
		}
		st := stream.New("fuzz")
		defer st.Close()
		if err := st.SetDescription(&description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{fm}}}}); err != nil {
			t.Fatal(err)
		}
		// The packets of one access unit, cut where the fuzzer says.
		var pieces [][]byte
		rest := payload
		for _, c := range cuts {
			if n := int(c); n > 0 && n < len(rest) {
				pieces, rest = append(pieces, rest[:n]), rest[n:]
			}
		}
		pieces = append(pieces, rest)
		for i, p := range pieces {
			st.WritePacketRTP(0, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Timestamp: 9000, Marker: i == len(pieces)-1}, Payload: p}, time.Now())
		}
		pkts := st.Video.Keyframe(nil)
		defer releaseAll(pkts)
		kf, err := keyframeOf(st.Video, pkts)
		if err == nil && !bytes.HasPrefix(kf.AnnexB, []byte{0, 0, 0, 1}) {
			t.Fatalf("Annex-B without a start code: %x", kf.AnnexB)
		}
	})
}

// Recordings may come from an imported mediamtx folder: any init and
// fragment bytes give keyframes or an error, never a panic, and every
// keyframe has a time.
func FuzzKeyframesOf(f *testing.F) {
	var initBuf, mediaBuf seekablebuffer.Buffer
	_ = fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000, Codec: &codecs.H264{SPS: []byte{0x67, 0x42, 0xc0, 0x1e}, PPS: []byte{0x68, 0xce}}}}}.Marshal(&initBuf)
	_ = fmp4.Part{Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: 90000, Samples: []*fmp4.Sample{
		{Duration: 3600, Payload: []byte{0, 0, 0, 2, 0x65, 0x88}},
		{Duration: 3600, IsNonSyncSample: true, Payload: []byte{0, 0, 0, 2, 0x41, 0x9a}},
	}}}}.Marshal(&mediaBuf)
	f.Add(initBuf.Bytes(), mediaBuf.Bytes())
	f.Add([]byte{}, []byte{})
	start := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, initB, mediaB []byte) {
		times, kfs, err := keyframesOf(initB, mediaB, start)
		if err == nil && (len(times) != len(kfs) || len(kfs) == 0) {
			t.Fatalf("%d times for %d keyframes", len(times), len(kfs))
		}
	})
}
