package archive

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/archive/mp4"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"
	"github.com/valyala/fasthttp"
)

// contiguity: a segment starting within this of the previous one's end
// continues it (no EXT-X-DISCONTINUITY).
const contiguity = time.Second

// ServePlaylist answers GET /archive/{camera}/index.m3u8?start=&end=&token=
// with an HLS VOD playlist of the segments overlapping the range. Each
// segment is authorized with "archive" at its own recording time: segments
// the viewer may not see (outside a footage window) are left out of the
// playlist, with a discontinuity where they were (as where recording
// stopped, or the camera's owner changed in a cluster); every segment
// request is authorized again. All refused: 403. Nothing recorded in the range: 404.
func (s *Store) ServePlaylist(ctx *fasthttp.RequestCtx, camera string) {
	start, end, ok := s.rangeRequest(ctx, camera, s.MaxPlaylist, true)
	if !ok {
		return
	}
	tok := token(ctx)
	body, dropped, err := s.playlist(ctx, tok, camera, start, end)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	if dropped != "" {
		ctx.Response.Header.Set(AudioDroppedHeader, dropped)
	}
	ctx.SetContentType("application/vnd.apple.mpegurl")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(body)
}

// AudioDroppedHeader is set on a VOD playlist whose recording has audio
// that a viewer with sound does not get because HLS players cannot decode
// it, as the live HLS does: its value names the recorded codecs ("LPCM":
// G.711 is recorded as 16-bit PCM). The MP4 download has it.
const AudioDroppedHeader = "X-Camgate-Audio-Dropped"

// Playlist builds the VOD playlist (see ServePlaylist).
func (s *Store) Playlist(ctx context.Context, tok, camera string, start, end time.Time) ([]byte, error) {
	b, _, err := s.playlist(ctx, tok, camera, start, end)
	return b, err
}

// playlist builds the VOD playlist, and names the audio left out of it
// for a viewer with sound. Runs of segments HLS cannot play (M-JPEG) are
// left out like those the viewer may not see; none playable is a 415.
func (s *Store) playlist(ctx context.Context, tok, camera string, start, end time.Time) ([]byte, string, error) {
	auth, err := s.begin(ctx, tok, camera, ActionArchive)
	if err != nil {
		return nil, "", err
	}
	segs := s.segmentsOf(ctx, camera, start, end)
	if len(segs) == 0 {
		if _, err := auth.authorize(start); err != nil {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%w: no recordings of %s between %s and %s", ErrNotFound, camera,
			start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	qs := "&token=" + url.QueryEscape(tok)
	b := make([]byte, 0, 160+len(segs)*(150+2*len(qs)))
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:"...)
	target := 1.0
	for _, sg := range segs {
		target = max(target, math.Ceil(sg.Duration.Seconds()))
	}
	b = strconv.AppendInt(b, int64(target), 10)
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:0\n"...)
	var prev *Segment
	var denied, unplayable error
	served := 0
	views := map[uint64]hlsView{} // by tracks fingerprint: one init read per kind of recording
	var dropped []string
	for i := range segs {
		sg := &segs[i]
		v, err := auth.authorize(sg.Start)
		if errors.Is(err, ErrForbidden) {
			denied = err
			prev = nil // a hole: what follows is a discontinuity
			continue
		}
		if err != nil {
			return nil, "", err
		}
		view, ok := views[sg.tracks]
		if !ok {
			view = s.hlsViewOf(camera, *sg)
			views[sg.tracks] = view
		}
		if view.err != nil {
			unplayable = view.err
			prev = nil
			continue
		}
		audio := "0"
		if v.Sound {
			audio = "1"
			for _, d := range view.dropped {
				if !slices.Contains(dropped, d) {
					dropped = append(dropped, d)
				}
			}
		}
		// Another holder is another recorder (the camera's owner changed):
		// its timeline restarts there, whatever the gap.
		if prev == nil || prev.tracks != sg.tracks || sg.Start.Sub(prev.End()).Abs() > contiguity || sg.node != prev.node {
			if denied != nil || prev != nil {
				b = append(b, "#EXT-X-DISCONTINUITY\n"...)
			}
			b = append(b, "#EXT-X-MAP:URI=\""...)
			b = appendSegmentName(b, sg.Start)
			b = append(b, ".mp4?init=1&a="...)
			b = append(b, audio...)
			b = append(b, qs...)
			b = append(b, "\"\n"...)
		}
		b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
		b = sg.Start.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, "\n#EXTINF:"...)
		b = strconv.AppendFloat(b, sg.Duration.Seconds(), 'f', 3, 64)
		b = append(b, ",\n"...)
		b = appendSegmentName(b, sg.Start)
		b = append(b, ".mp4?a="...)
		b = append(b, audio...)
		b = append(b, qs...)
		b = append(b, '\n')
		prev = sg
		served++
	}
	if served == 0 {
		if denied == nil {
			return nil, "", unplayable
		}
		return nil, "", denied
	}
	b = append(b, "#EXT-X-ENDLIST\n"...)
	return b, strings.Join(dropped, ","), nil
}

// hlsView is what HLS playback makes of a kind of recording: the audio
// codecs it leaves out, or why it cannot play it at all.
type hlsView struct {
	dropped []string
	err     error
}

// hlsViewOf reads seg's init. A segment it cannot read is listed: its
// own request answers the error.
func (s *Store) hlsViewOf(camera string, seg Segment) hlsView {
	b, err := s.readInit(camera, seg)
	if err != nil {
		return hlsView{}
	}
	init, _, err := parseInit(b)
	if err != nil {
		return hlsView{}
	}
	_, dropped, _, err := hlsTracks(init, true, s.aac)
	if errors.Is(err, errNoTracks) {
		err = nil
	}
	return hlsView{dropped: dropped, err: err}
}

// readInit reads the init section (ftyp+moov) of a segment file.
func (s *Store) readInit(camera string, seg Segment) ([]byte, error) {
	f, err := s.roots[seg.src].Open(camera + "/" + seg.name())
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ftyp, err := mp4.ReadAt(f, 0, seg.Size)
	if err != nil {
		return nil, err
	}
	moov, err := mp4.ReadAt(f, ftyp.End(), seg.Size)
	if err != nil || moov.End() > mp4.MaxInitSize {
		return nil, errors.New("no moov within the init size")
	}
	b := make([]byte, moov.End())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	return b, nil
}

// ServeSegment answers GET /archive/{camera}/{segment}.mp4: the segment's
// fragments (or with ?init=1 its init section), authorized with "archive"
// at the segment's recording time. Audio is included when ?a=1 and the
// viewer has sound. Decode times are rebased onto the wall clock so that
// consecutive segments form one timeline.
func (s *Store) ServeSegment(ctx *fasthttp.RequestCtx, camera, id string) {
	start, ok := s.segmentRequest(ctx, camera, id)
	if !ok {
		return
	}
	tok := token(ctx)
	if tok == "" {
		s.writeError(ctx, fmt.Errorf("%w: a token is required", ErrUnauthenticated))
		return
	}
	// A segment is named by its start, which is its footage time: the
	// request is decided before any lookup, so a refused one costs no
	// shared-index query (a cluster's Redis) and tells nothing.
	v, err := s.authorize(ctx, tok, camera, ActionArchive, start)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	seg, ok := s.lookupAny(ctx, camera, start)
	if !ok {
		s.writeError(ctx, fmt.Errorf("%w: no segment %s of %s", ErrNotFound, id, camera))
		return
	}
	q := ctx.QueryArgs()
	audio := v.Sound && string(q.Peek("a")) == "1"
	var buf seekablebuffer.Buffer
	if string(q.Peek("init")) == "1" {
		err = s.WriteSegmentInit(&buf, camera, seg, audio)
	} else {
		err = s.WriteSegmentMedia(&buf, camera, seg, audio)
	}
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	ctx.SetContentType("video/mp4")
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	ctx.SetBody(buf.Bytes())
}

// readSegment reads the complete part of a segment file.
func (s *Store) readSegment(camera string, seg Segment) ([]byte, error) {
	if seg.node != "" {
		return s.readHeld(s.ctx, camera, seg)
	}
	f, err := s.roots[seg.src].Open(camera + "/" + seg.name())
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("%w: segment %s of %s was deleted", ErrNotFound, seg.ID(), camera)
		}
		return nil, err
	}
	defer f.Close()
	b := make([]byte, seg.Size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, seg.Size), b); err != nil {
		return nil, fmt.Errorf("archive: read segment %s of %s: %w", seg.ID(), camera, err)
	}
	return b, nil
}

// hlsTracks returns the init tracks HLS serves, as the live HLS does:
// those of codecs HLS players decode in fMP4 (H264, H265, AAC, Opus),
// video always, audio only with audio. Recorded PCM (G.711 cameras) is
// served as AAC when enc can encode it (pcm lists those tracks; keep has
// their AAC in their place). It names the audio codecs left out with audio
// set (PCM without enc); a recording whose video HLS cannot carry (M-JPEG)
// is errNotHLS, naming it.
func hlsTracks(init *fmp4.Init, audio bool, enc AudioEncoder) (keep []*fmp4.InitTrack, dropped []string, pcm []pcmTrack, err error) {
	var video []string
	for _, t := range init.Tracks {
		isVideo := t.Codec.IsVideo()
		switch {
		case !isVideo && !audio:
		case !hlsCodec(t.Codec) && isVideo:
			video = append(video, codecName(t.Codec))
		case !hlsCodec(t.Codec):
			if out := aacTrack(t, enc); out != nil {
				pcm = append(pcm, pcmTrack{in: t, out: out})
				keep = append(keep, out)
				continue
			}
			dropped = append(dropped, codecName(t.Codec))
		default:
			keep = append(keep, t)
		}
	}
	hasVideo := slices.ContainsFunc(keep, func(t *fmp4.InitTrack) bool { return t.Codec.IsVideo() })
	switch {
	case len(video) > 0 && !hasVideo:
		return nil, dropped, nil, fmt.Errorf("%w: this recording is %s video, which HLS players cannot play; download it as MP4 (/archive/{camera}/download)",
			errNotHLS, strings.Join(video, ", "))
	case len(keep) == 0 && len(dropped) > 0:
		return nil, dropped, nil, fmt.Errorf("%w: this recording is %s audio, which HLS players cannot play; download it as MP4 (/archive/{camera}/download)",
			errNotHLS, strings.Join(dropped, ", "))
	case len(keep) == 0:
		return nil, dropped, nil, errNoTracks
	}
	return keep, dropped, pcm, nil
}

// aacTrack is the AAC track that serves the PCM track t, nil when t is
// not PCM or enc cannot encode it.
func aacTrack(t *fmp4.InitTrack, enc AudioEncoder) *fmp4.InitTrack {
	l, ok := t.Codec.(*codecs.LPCM)
	if !ok || enc == nil {
		return nil
	}
	cfg, ok := enc.AACConfig(l)
	if !ok || cfg.SampleRate <= 0 {
		return nil
	}
	return &fmp4.InitTrack{ID: t.ID, TimeScale: uint32(cfg.SampleRate), Codec: &codecs.MPEG4Audio{Config: cfg}}
}

// hlsCodec reports whether HLS players decode c in fMP4.
func hlsCodec(c codecs.Codec) bool {
	switch c.(type) {
	case *codecs.H264, *codecs.H265, *codecs.MPEG4Audio, *codecs.Opus:
		return true
	}
	return false
}

// codecName names a recorded codec for a viewer.
func codecName(c codecs.Codec) string {
	switch c.(type) {
	case *codecs.MJPEG:
		return "M-JPEG"
	case *codecs.LPCM:
		return "LPCM"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", c), "*codecs.")
}

var (
	errNoTracks = fmt.Errorf("%w: this recording has no video and the viewer has no sound", ErrForbidden)
	errNotHLS   = fmt.Errorf("%w: not playable over HLS", ErrUnsupported)
)

// WriteSegmentInit writes the init section (ftyp+moov) of seg, with its
// audio tracks only when audio is set.
func (s *Store) WriteSegmentInit(w io.WriteSeeker, camera string, seg Segment, audio bool) error {
	b, err := s.readSegment(camera, seg)
	if err != nil {
		return err
	}
	return segmentError(writeInit(w, b, audio, s.aac), camera, seg)
}

// segmentError names the segment in a parse error of its file.
func segmentError(err error, camera string, seg Segment) error {
	if err == nil || errors.Is(err, errNoTracks) || errors.Is(err, errNotHLS) {
		return err
	}
	return fmt.Errorf("archive: segment %s of %s: %w", seg.ID(), camera, err)
}

// writeInit writes the init section of the segment file b.
func writeInit(w io.WriteSeeker, b []byte, audio bool, enc AudioEncoder) error {
	init, _, err := parseInit(b)
	if err != nil {
		return err
	}
	keep, _, _, err := hlsTracks(init, audio, enc)
	if err != nil {
		return err
	}
	out := fmp4.Init{Tracks: keep}
	return out.Marshal(w)
}

// WriteSegmentMedia writes the fragments of seg (moof+mdat pairs), with
// audio only when audio is set, decode times rebased on the Unix epoch.
func (s *Store) WriteSegmentMedia(w io.WriteSeeker, camera string, seg Segment, audio bool) error {
	b, err := s.readSegment(camera, seg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, encodeTimeout)
	defer cancel()
	pb := pcmPlayback{enc: s.aac}
	if audio && s.aac != nil {
		pb.around = func(t *fmp4.InitTrack) []pcmRun { return s.pcmAround(ctx, camera, seg, t) }
		pb.failed = func(err error) {
			s.Logger.Warn("archive: a segment's audio cannot be encoded for HLS; its video is served without it",
				"camera", camera, "segment", seg.ID(), "error", err)
		}
	}
	return segmentError(writeMedia(ctx, w, b, seg.Start, audio, pb), camera, seg)
}

// pcmPlayback is how writeMedia serves recorded PCM: enc encodes it (nil:
// left out), around gives the PCM of the segments next to it (nil: none),
// failed is told why a segment's audio was left out (nil: not told).
type pcmPlayback struct {
	enc    AudioEncoder
	around func(*fmp4.InitTrack) []pcmRun
	failed func(error)
}

// writeMedia writes the fragments of the segment file b, which started
// at start. Audio that cannot be encoded is left out; the video is served.
func writeMedia(ctx context.Context, w io.WriteSeeker, b []byte, start time.Time, audio bool, pb pcmPlayback) error {
	init, _, err := parseInit(b)
	if err != nil {
		return err
	}
	moov, _ := mp4.At(b, 0)
	moov, _ = mp4.At(b, moov.End())
	parts, err := readParts(b, moov.End())
	if err != nil {
		return err
	}
	keep, _, pcm, err := hlsTracks(init, audio, pb.enc)
	if err != nil {
		return err
	}
	epoch := time.Duration(start.UnixNano())
	for _, t := range pcm {
		var nb []pcmRun
		if pb.around != nil {
			nb = pb.around(t.in)
		}
		if err := encodePCM(ctx, pb.enc, t, parts, epoch, nb); err != nil && pb.failed != nil {
			pb.failed(err) // encodePCM took the PCM out
		}
	}
	for _, p := range parts {
		tracks := p.Tracks[:0]
		for _, pt := range p.Tracks {
			t := keptTrack(keep, pt.ID)
			if t == nil {
				continue
			}
			pt.BaseTime += uint64(mp4.ToTicks(epoch, t.TimeScale))
			tracks = append(tracks, pt)
		}
		if len(tracks) == 0 {
			continue
		}
		p.Tracks = tracks
		if err := p.Marshal(w); err != nil {
			return err
		}
	}
	return nil
}

// keptTrack is the track of keep with id, nil when not kept.
func keptTrack(keep []*fmp4.InitTrack, id int) *fmp4.InitTrack {
	for _, t := range keep {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// readParts reads the moof+mdat pairs of the segment file b from off
// with the archive's one moof parser; payloads are slices of b. The runs
// of one track in a moof make one part track, as the generic decoder
// made them.
func readParts(b []byte, off int64) (fmp4.Parts, error) {
	var parts fmp4.Parts
	fr := mp4.Fragments{FileSize: int64(len(b))}
	for off < int64(len(b)) {
		bx, err := mp4.At(b, off)
		if err != nil {
			return nil, err
		}
		off = bx.End()
		if bx.Type != "moof" {
			continue
		}
		moof := b[bx.Off:bx.End()]
		fr.Reset()
		if err := fr.AddMoof(moof, bx.Off); err != nil {
			return nil, err
		}
		p := &fmp4.Part{SequenceNumber: mfhdSequence(moof)}
		samples := make([]fmp4.Sample, len(fr.Entries))
		k := 0
		for _, r := range fr.Runs {
			var pt *fmp4.PartTrack
			if n := len(p.Tracks); n > 0 && p.Tracks[n-1].ID == r.TrackID {
				pt = p.Tracks[n-1]
			} else {
				pt = &fmp4.PartTrack{ID: r.TrackID, BaseTime: r.Base}
				p.Tracks = append(p.Tracks, pt)
			}
			at := r.DataOffset
			for _, e := range r.Entries {
				if e.Size == 0 {
					return nil, errors.New("invalid sample size")
				}
				s := &samples[k]
				k++
				*s = fmp4.Sample{Duration: e.Dur, PTSOffset: e.CTS, IsNonSyncSample: e.Flags&mp4.FlagNonSync != 0, Payload: b[at : at+int64(e.Size)]}
				at += int64(e.Size)
				pt.Samples = append(pt.Samples, s)
			}
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// mfhdSequence is the sequence number in a moof's mfhd, 0 without one.
func mfhdSequence(moof []byte) uint32 {
	for off := int64(8); off < int64(len(moof)); {
		c, err := mp4.At(moof, off)
		if err != nil {
			return 0
		}
		if c.Type == "mfhd" && c.Size >= 16 {
			return binary.BigEndian.Uint32(moof[c.Off+12 : c.Off+16])
		}
		off = c.End()
	}
	return 0
}
