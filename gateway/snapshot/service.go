// Package snapshot makes the JPEG of GET /api/v1/cameras/{id}/snapshot.jpg:
// the camera's own snapshot (ONVIF GetSnapshotUri) when its device has
// ONVIF configured, otherwise the latest keyframe of its live stream,
// taken from the stream hub's GOP cache and decoded by ffmpeg (FFmpeg).
//
// Decoding costs a process and tens of milliseconds of CPU, so the result
// is cached per camera and keyframe (the key packet's RTP timestamp and
// capture time name it) and concurrent requests for the same keyframe
// share one decode (singleflight): a hundred viewers asking at once decode
// once, and they all get the same bytes until the camera sends its next
// keyframe. Authorization is not done here: the gateway asks the
// enforcement point (gateway/access) first, as on every other edge.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camgate/camgate/gateway/ptz"
	"github.com/camgate/camgate/gateway/stream"
)

// Hub is what snapshots need from the stream hub.
type Hub interface {
	Acquire(ctx context.Context, camera string) (*stream.Stream, func(), error)
}

// Decoder turns a keyframe into a JPEG (FFmpeg).
type Decoder interface {
	Decode(ctx context.Context, kf Keyframe) ([]byte, error)
}

// CameraSnapshots fetches a camera's own snapshot over ONVIF
// (ptz.Controller).
type CameraSnapshots interface {
	Snapshot(ctx context.Context, cam ptz.Camera) ([]byte, error)
}

// Camera is what a snapshot needs of a device.
type Camera struct {
	ID string
	// ONVIF is the device's ONVIF configuration, nil when it has none.
	ONVIF *ptz.Camera
}

// Image is one snapshot.
type Image struct {
	JPEG []byte
	// Taken is the capture time of the keyframe (or when the camera's own
	// snapshot was fetched).
	Taken time.Time
	// Source is "keyframe" (decoded from the stream), "onvif" (the
	// camera's own) or "archive".
	Source string
}

// Service makes snapshots. Set the fields, call Initialize, then use it
// from any goroutine.
type Service struct {
	// Hub gives the live streams (required).
	Hub Hub
	// Decoder decodes keyframes (required).
	Decoder Decoder
	// ONVIF fetches cameras' own snapshots (optional: without it every
	// snapshot is decoded from the stream).
	ONVIF CameraSnapshots
	// Recordings gives snapshots from the recording (optional: without it
	// ?at= finds no recording).
	Recordings Recordings
	// ONVIFMaxAge is how long a camera's own snapshot is served again
	// (default 1 s): the camera has no keyframe identity to cache on.
	ONVIFMaxAge time.Duration
	// KeyframeWait bounds how long a snapshot waits for a keyframe when the
	// stream has none cached yet, e.g. it was just opened (default 5 s).
	KeyframeWait time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default: discard).
	Logger *slog.Logger

	flight   singleflight.Group
	mu       sync.Mutex               // guards the maps below
	live     map[string]*entry        // camera → its latest decoded keyframe
	onvif    map[string]*entry        // camera → its latest own snapshot
	recorded map[string]*entry        // segment and keyframe → its JPEG
	segKeys  map[string]*recordedKeys // segment → its keyframes' times
}

// entry is one cached snapshot; it is never changed once stored.
type entry struct {
	id  keyID
	img Image
}

// keyID names one keyframe of one stream: its RTP timestamp and the
// capture time of its key packet.
type keyID struct {
	ts  uint32
	ntp int64
}

// Initialize checks the fields and applies the defaults.
func (s *Service) Initialize() error {
	if s.Hub == nil || s.Decoder == nil {
		return errors.New("snapshot: Hub and Decoder are required")
	}
	if s.ONVIFMaxAge <= 0 {
		s.ONVIFMaxAge = time.Second
	}
	if s.KeyframeWait <= 0 {
		s.KeyframeWait = 5 * time.Second
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	s.live = map[string]*entry{}
	s.onvif = map[string]*entry{}
	s.recorded = map[string]*entry{}
	s.segKeys = map[string]*recordedKeys{}
	return nil
}

// Forget drops what is cached for a camera (it was deleted or changed).
func (s *Service) Forget(camera string) {
	s.mu.Lock()
	delete(s.live, camera)
	delete(s.onvif, camera)
	s.mu.Unlock()
}

// Live returns a JPEG of the camera now: its own snapshot when it has
// ONVIF configured and answers, else its latest keyframe decoded.
func (s *Service) Live(ctx context.Context, cam Camera) (Image, error) {
	if cam.ONVIF != nil && cam.ONVIF.OnvifURL != "" && s.ONVIF != nil {
		img, err := s.cameraSnapshot(ctx, cam)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil {
			return Image{}, ctx.Err()
		}
		// The stream is still there: a camera whose snapshot service
		// fails (or that has none) gets its keyframe decoded instead.
		s.Logger.Info("camera snapshot failed, decoding the stream's keyframe instead", "camera", cam.ID, "error", err)
	}
	return s.keyframe(ctx, cam.ID)
}

// cameraSnapshot fetches the camera's own JPEG, one fetch at a time per
// camera, reused for ONVIFMaxAge.
func (s *Service) cameraSnapshot(ctx context.Context, cam Camera) (Image, error) {
	now := s.Now()
	s.mu.Lock()
	e := s.onvif[cam.ID]
	s.mu.Unlock()
	if e != nil && now.Sub(e.img.Taken) < s.ONVIFMaxAge && now.Sub(e.img.Taken) >= 0 {
		return e.img, nil
	}
	v, err, _ := s.flight.Do("onvif\x00"+cam.ID, func() (any, error) {
		// Detached from the first caller: the others wait for the same
		// fetch, which the ONVIF client bounds with its own timeout.
		b, err := s.ONVIF.Snapshot(context.WithoutCancel(ctx), *cam.ONVIF)
		if err != nil {
			return nil, err
		}
		if !isJPEG(b) {
			return nil, fmt.Errorf("camera %s: its snapshot is not a JPEG", cam.ID)
		}
		e := &entry{img: Image{JPEG: b, Taken: s.Now(), Source: "onvif"}}
		s.mu.Lock()
		s.onvif[cam.ID] = e
		s.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return Image{}, err
	}
	return v.(*entry).img, nil
}

// keyframe returns the camera's latest keyframe as a JPEG, decoding it
// only the first time it is asked for.
func (s *Service) keyframe(ctx context.Context, camera string) (Image, error) {
	st, release, err := s.Hub.Acquire(ctx, camera)
	if err != nil {
		if errors.Is(err, stream.ErrUnknownCamera) || ctx.Err() != nil {
			return Image{}, err
		}
		s.Logger.Warn("snapshot: camera stream unavailable", "camera", camera, "error", err)
		return Image{}, fmt.Errorf("camera %s: %w", camera, ErrUpstream)
	}
	defer release()
	v := st.Video
	if !hasKeyedVideo(v) {
		return Image{}, fmt.Errorf("camera %s: %w", camera, ErrUnsupportedCodec)
	}
	var buf [32]*stream.Packet
	pkts := v.Keyframe(buf[:0])
	if !complete(pkts) {
		pkts, err = s.waitKeyframe(ctx, v, pkts)
		if err != nil {
			return Image{}, fmt.Errorf("camera %s: %w", camera, err)
		}
	}
	defer releaseAll(pkts)
	id := keyID{ts: pkts[0].Timestamp(), ntp: pkts[0].NTP.UnixNano()}
	s.mu.Lock()
	e := s.live[camera]
	s.mu.Unlock()
	if e != nil && e.id == id {
		return e.img, nil
	}
	key := camera + "\x00" + strconv.FormatUint(uint64(id.ts), 10) + "\x00" + strconv.FormatInt(id.ntp, 10)
	res, err, _ := s.flight.Do(key, func() (any, error) {
		kf, err := keyframeOf(v, pkts)
		if err != nil {
			return nil, err
		}
		jpeg, err := s.Decoder.Decode(context.WithoutCancel(ctx), kf)
		if err != nil {
			return nil, err
		}
		e := &entry{id: id, img: Image{JPEG: jpeg, Taken: pkts[0].NTP, Source: "keyframe"}}
		s.mu.Lock()
		// A slower decode of an older keyframe does not replace a newer one.
		if cur := s.live[camera]; cur == nil || !cur.img.Taken.After(e.img.Taken) {
			s.live[camera] = e
		}
		s.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("camera %s: %w", camera, err)
	}
	return res.(*entry).img, nil
}

var errGotKeyframe = errors.New("keyframe complete")

// waitKeyframe follows the variant as a reader until its GOP cache holds a
// complete keyframe access unit, for at most KeyframeWait. pkts (an
// incomplete access unit) are released.
func (s *Service) waitKeyframe(ctx context.Context, v *stream.Variant, pkts []*stream.Packet) ([]*stream.Packet, error) {
	releaseAll(pkts)
	pkts = pkts[:0]
	ctx, cancel := context.WithTimeout(ctx, s.KeyframeWait)
	defer cancel()
	r := stream.NewReader(64)
	if err := v.AddReader(r); err != nil {
		return nil, ErrUpstream
	}
	defer r.Close()
	err := r.Run(ctx, func([]*stream.Packet) error {
		pkts = v.Keyframe(pkts[:0])
		if complete(pkts) {
			return errGotKeyframe
		}
		releaseAll(pkts)
		return nil
	})
	switch {
	case errors.Is(err, errGotKeyframe):
		return pkts, nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return nil, ErrNoKeyframe
	case errors.Is(err, stream.ErrClosed):
		return nil, ErrUpstream
	}
	return nil, err
}

func releaseAll(pkts []*stream.Packet) {
	for i, p := range pkts {
		p.Release()
		pkts[i] = nil
	}
}

// hasKeyedVideo reports whether the variant has a video media whose
// keyframes the hub detects (H264 or H265).
func hasKeyedVideo(v *stream.Variant) bool {
	for _, m := range v.Desc.Medias {
		for _, f := range m.Formats {
			switch f.(type) {
			case *format.H264, *format.H265:
				return true
			}
		}
	}
	return false
}
