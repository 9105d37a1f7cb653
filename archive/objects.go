package archive

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/valyala/fasthttp"
)

// Object kinds.
const (
	KindPhoto = "photo" // motion-cam photo (image/*), served with photo_view
	KindAudio = "audio" // voice-module clip (audio/*), served with audio_playback / audio_download
)

// Object is a stored media object's metadata ({id}.json beside {id}.bin).
type Object struct {
	ID          string    `json:"id"`
	Device      string    `json:"device"`
	Kind        string    `json:"kind"`
	ContentType string    `json:"content_type"`
	At          time.Time `json:"at"`
	Size        int64     `json:"size"`
}

const objectsDir = "objects"

// validObjectID: ids are minted here as 32 hex digits; anything else is
// refused before any file is touched.
func validObjectID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// StoreObject stores a media object of device and returns its metadata.
// contentType must be on the allow-list (object_types.go) and data must
// begin with its signature; kind, when not empty, must be that type's.
func (s *Store) StoreObject(device, kind, contentType string, at time.Time, data []byte) (Object, error) {
	if err := checkName("device", device); err != nil {
		return Object{}, err
	}
	if len(data) == 0 {
		return Object{}, fmt.Errorf("%w: empty body", ErrBadRequest)
	}
	if len(data) > s.MaxObjectSize {
		return Object{}, fmt.Errorf("%w: object of %d bytes, at most %d", ErrTooLarge, len(data), s.MaxObjectSize)
	}
	t, err := objectType(contentType, kind, data)
	if err != nil {
		return Object{}, err
	}
	var rnd [16]byte
	rand.Read(rnd[:])
	o := Object{ID: hex.EncodeToString(rnd[:]), Device: device, Kind: t.kind, ContentType: t.name, At: at.UTC(), Size: int64(len(data))}
	dir := device + "/" + objectsDir
	if err := s.root.MkdirAll(dir, 0o755); err != nil {
		return Object{}, fmt.Errorf("archive: objects folder: %w", err)
	}
	meta, _ := json.Marshal(o)
	// Data first, metadata last: an object is visible only once complete.
	if err := s.writeFileAtomic(dir+"/"+o.ID+".bin", data); err != nil {
		return Object{}, err
	}
	if err := s.writeFileAtomic(dir+"/"+o.ID+".json", meta); err != nil {
		return Object{}, err
	}
	return o, nil
}

func (s *Store) writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := s.root.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = s.root.Rename(tmp, path)
	}
	if err != nil {
		s.root.Remove(tmp)
		return fmt.Errorf("archive: write %s: %w", path, err)
	}
	return nil
}

// LookupObject reads an object's metadata.
func (s *Store) LookupObject(device, id string) (Object, error) {
	if err := checkName("device", device); err != nil {
		return Object{}, err
	}
	if !validObjectID(id) {
		return Object{}, fmt.Errorf("%w: invalid object id %q", ErrBadRequest, id)
	}
	b, err := s.root.ReadFile(device + "/" + objectsDir + "/" + id + ".json")
	if err != nil {
		if isNotExist(err) {
			return Object{}, fmt.Errorf("%w: no object %s of %s", ErrNotFound, id, device)
		}
		return Object{}, fmt.Errorf("archive: %w", err)
	}
	var o Object
	if err := json.Unmarshal(b, &o); err != nil {
		return Object{}, fmt.Errorf("archive: object %s of %s: %w", id, device, err)
	}
	return o, nil
}

// ServeUpload answers POST /api/v1/devices/{id}/objects: the body is the
// photo or audio clip, of a type on the allow-list (object_types.go; any
// other type, or bytes that are not the declared type, is 400 naming the
// accepted types and stores nothing), ?kind=photo|audio and
// ?at=RFC3339 (capture time, default now) are optional. → 201 {"id":…}.
// The integrator routes it behind admin authentication.
func (s *Store) ServeUpload(ctx *fasthttp.RequestCtx, device string) {
	q := ctx.QueryArgs()
	now := s.Now()
	at := now
	if v := q.Peek("at"); len(v) > 0 {
		var err error
		if at, err = parseTime("at", string(v), now); err != nil {
			s.writeError(ctx, err)
			return
		}
	}
	o, err := s.StoreObject(device, string(q.Peek("kind")), string(ctx.Request.Header.ContentType()), at, ctx.PostBody())
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusCreated, map[string]string{"id": o.ID, "kind": o.Kind, "at": o.At.Format(time.RFC3339Nano)})
}

// ServeObject answers GET /archive/{device}/objects/{id}?token=: a photo
// needs photo_view, an audio clip audio_playback, and with ?download=1
// audio_download (then served as an attachment). Authorization uses the
// object's capture time as the footage time. Every object is served with
// nosniff and a sandboxing CSP; one whose stored type is not on the
// allow-list or whose bytes do not match it (stored before the allow-list)
// only as an application/octet-stream attachment.
func (s *Store) ServeObject(ctx *fasthttp.RequestCtx, device, id string) {
	tok := token(ctx)
	if tok == "" {
		s.writeError(ctx, fmt.Errorf("%w: a token is required", ErrUnauthenticated))
		return
	}
	o, err := s.LookupObject(device, id)
	if err != nil {
		s.writeError(ctx, err)
		return
	}
	download := string(ctx.QueryArgs().Peek("download")) == "1"
	action := ActionPhotoView
	if o.Kind == KindAudio {
		action = ActionAudioPlayback
		if download {
			action = ActionAudioDownload
		}
	}
	if _, err := s.authorize(ctx, tok, device, action, o.At); err != nil {
		s.writeError(ctx, err)
		return
	}
	f, err := s.root.Open(device + "/" + objectsDir + "/" + id + ".bin")
	if err != nil {
		s.writeError(ctx, fmt.Errorf("%w: object %s of %s has no data", ErrNotFound, id, device))
		return
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, o.Size+1))
	if err != nil {
		s.writeError(ctx, fmt.Errorf("archive: read object: %w", err))
		return
	}
	ct, ext, inline := servedType(o, body)
	ctx.SetContentType(ct)
	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderCacheControl, "no-store")
	h.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	h.Set(fasthttp.HeaderContentSecurityPolicy, objectCSP)
	disposition := "attachment"
	if inline && !download {
		disposition = "inline"
	}
	h.Set(fasthttp.HeaderContentDisposition, disposition+`; filename="`+device+"_"+o.ID+ext+`"`)
	ctx.SetBody(body)
}

// objectCSP: an object opened as a page loads nothing and runs nothing,
// whatever a browser makes of its bytes.
const objectCSP = "default-src 'none'; sandbox"
