package snapshot

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
)

// encodedKeyframe is one real H264 keyframe (Annex-B) of a w×h test
// picture, encoded by ffmpeg.
func encodedKeyframe(t testing.TB, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
		"testsrc2=size="+strconv.Itoa(w)+"x"+strconv.Itoa(h)+":rate=25", "-frames:v", "1", "-c:v", "libx264",
		"-x264-params", "aud=0", "-f", "h264", "pipe:1").Output()
	if err != nil {
		t.Skipf("ffmpeg cannot encode a test keyframe: %v", err)
	}
	var au h264.AnnexB
	if err := au.Unmarshal(out); err != nil {
		t.Fatal(err)
	}
	return au
}

// fixedHub serves one stream that holds one keyframe and nothing else, so
// that every request sees the same keyframe.
type fixedHub struct {
	st       *stream.Stream
	acquired atomic.Int64
}

func (h *fixedHub) Acquire(context.Context, string) (*stream.Stream, func(), error) {
	h.acquired.Add(1)
	return h.st, func() {}, nil
}

// newFixedHub packetizes the keyframe au (without its parameter sets, which
// only the SDP carries, as many cameras do) into a stream.
func newFixedHub(t testing.TB, au [][]byte) *fixedHub {
	t.Helper()
	var sps, pps []byte
	var pic [][]byte
	for _, n := range au {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = n
		case h264.NALUTypePPS:
			pps = n
		case h264.NALUTypeSEI:
		default:
			pic = append(pic, n)
		}
	}
	f := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: sps, PPS: pps}
	st := stream.New("cam1")
	if err := st.SetDescription(&description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{f}}}}); err != nil {
		t.Fatal(err)
	}
	enc, err := f.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := enc.Encode(pic)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, p := range pkts {
		p.Timestamp = 90000
		st.WritePacketRTP(0, p, now)
	}
	t.Cleanup(st.Close)
	return &fixedHub{st: st}
}

// countingDecoder counts the decodes that reach the real decoder.
type countingDecoder struct {
	Decoder
	n atomic.Int64
}

func (c *countingDecoder) Decode(ctx context.Context, kf Keyframe) ([]byte, error) {
	c.n.Add(1)
	return c.Decoder.Decode(ctx, kf)
}

func newFFmpeg(t testing.TB) *FFmpeg {
	t.Helper()
	f := &FFmpeg{}
	if err := f.Initialize(); err != nil {
		t.Fatal(err)
	}
	if !f.Available() {
		t.Skip("ffmpeg is not installed")
	}
	return f
}

func newService(t testing.TB, hub Hub, dec Decoder, onvif CameraSnapshots) *Service {
	t.Helper()
	s := &Service{Hub: hub, Decoder: dec, ONVIF: onvif}
	if err := s.Initialize(); err != nil {
		t.Fatal(err)
	}
	return s
}

func decodeJPEG(t testing.TB, b []byte) (w, h int) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a JPEG: %v", err)
	}
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// The demo camera's stream, pulled by a real hub, gives a JPEG of the clip's
// size: the keyframe comes out of the GOP cache, the parameter sets from
// the SDP or the access unit, the pixels from ffmpeg.
func TestLiveDemoCamera(t *testing.T) {
	hub := &stream.Hub{Sources: func(string) (source.Source, error) { return source.New("builtin:demo", source.Options{}) }, Linger: time.Millisecond}
	if err := hub.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer hub.Close()
	s := newService(t, hub, newFFmpeg(t), nil)
	img, err := s.Live(context.Background(), Camera{ID: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	if w, h := decodeJPEG(t, img.JPEG); w != 640 || h != 360 || img.Source != "keyframe" || img.Taken.IsZero() {
		t.Fatalf("got %dx%d from %s taken %v, want 640x360 from the keyframe", w, h, img.Source, img.Taken)
	}
}

// A hundred viewers asking at once for the same keyframe cause one decode,
// and all get the same bytes; asking again later costs no decode either.
func TestHundredViewersDecodeOnce(t *testing.T) {
	hub := newFixedHub(t, encodedKeyframe(t, 320, 240))
	dec := &countingDecoder{Decoder: newFFmpeg(t)}
	s := newService(t, hub, dec, nil)
	var wg sync.WaitGroup
	imgs := make([]Image, 100)
	errs := make([]error, 100)
	for i := range imgs {
		wg.Go(func() { imgs[i], errs[i] = s.Live(context.Background(), Camera{ID: "cam1"}) })
	}
	wg.Wait()
	for i := range imgs {
		if errs[i] != nil {
			t.Fatalf("viewer %d: %v", i, errs[i])
		}
		if !bytes.Equal(imgs[i].JPEG, imgs[0].JPEG) {
			t.Fatalf("viewer %d got other bytes", i)
		}
	}
	if w, h := decodeJPEG(t, imgs[0].JPEG); w != 320 || h != 240 {
		t.Fatalf("%dx%d, want 320x240", w, h)
	}
	if _, err := s.Live(context.Background(), Camera{ID: "cam1"}); err != nil {
		t.Fatal(err)
	}
	if n := dec.n.Load(); n != 1 {
		t.Fatalf("%d decodes for 101 requests of one keyframe, want 1", n)
	}
}

// Without ffmpeg the answer says so (ErrNoDecoder, a 503 at the edge).
func TestNoFFmpeg(t *testing.T) {
	hub := newFixedHub(t, encodedKeyframe(t, 160, 120))
	f := &FFmpeg{Path: "camgate-no-such-ffmpeg"}
	if err := f.Initialize(); err != nil {
		t.Fatal(err)
	}
	s := newService(t, hub, f, nil)
	if _, err := s.Live(context.Background(), Camera{ID: "cam1"}); !errors.Is(err, ErrNoDecoder) {
		t.Fatalf("err = %v, want ErrNoDecoder", err)
	}
}

// A decode that outlives Timeout is killed and reported as such.
func TestFFmpegTimeout(t *testing.T) {
	// A stand-in "ffmpeg" that never answers.
	f := &FFmpeg{Path: writeScript(t, "#!/bin/sh\nexec sleep 30\n"), Timeout: 200 * time.Millisecond}
	if err := f.Initialize(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := f.Decode(context.Background(), Keyframe{Codec: CodecH264, AnnexB: []byte{0, 0, 0, 1, 0x65}})
	if !errors.Is(err, ErrDecodeTimeout) {
		t.Fatalf("err = %v, want ErrDecodeTimeout", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the timed-out decode took %v", d)
	}
}

// fakeCameraSnapshots is a camera's ONVIF snapshot service.
type fakeCameraSnapshots struct {
	jpeg []byte
	err  error
	n    atomic.Int64
}

func (f *fakeCameraSnapshots) Snapshot(context.Context, ptz.Camera) ([]byte, error) {
	f.n.Add(1)
	return f.jpeg, f.err
}

// A camera with ONVIF gives its own snapshot (reused for ONVIFMaxAge);
// when that fails, its keyframe is decoded instead.
func TestONVIFFirstThenKeyframe(t *testing.T) {
	hub := newFixedHub(t, encodedKeyframe(t, 160, 120))
	own := &fakeCameraSnapshots{jpeg: []byte{0xff, 0xd8, 0xff, 0xe0, 1, 2, 0xff, 0xd9}}
	s := newService(t, hub, newFFmpeg(t), own)
	cam := Camera{ID: "cam1", ONVIF: &ptz.Camera{ID: "cam1", OnvifURL: "http://192.0.2.1/onvif/device_service"}}
	for range 3 {
		img, err := s.Live(context.Background(), cam)
		if err != nil || img.Source != "onvif" || !bytes.Equal(img.JPEG, own.jpeg) {
			t.Fatalf("%v %s", err, img.Source)
		}
	}
	if own.n.Load() != 1 {
		t.Fatalf("%d fetches within ONVIFMaxAge, want 1", own.n.Load())
	}
	if hub.acquired.Load() != 0 {
		t.Fatal("the stream was opened although the camera gave its own snapshot")
	}
	s.Forget("cam1")
	own.err = errors.New("GetSnapshotUri: ActionNotSupported")
	img, err := s.Live(context.Background(), cam)
	if err != nil || img.Source != "keyframe" {
		t.Fatalf("fallback: %v %s", err, img.Source)
	}
	if w, h := decodeJPEG(t, img.JPEG); w != 160 || h != 120 {
		t.Fatalf("%dx%d", w, h)
	}
}
