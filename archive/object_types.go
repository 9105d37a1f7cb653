package archive

import (
	"bytes"
	"fmt"
	"mime"
	"strings"
)

// mediaType is one media type an object may have: objects are served from
// camgate's own origin to viewers whose URL carries their token, so only
// types a browser renders as an image or plays as audio are accepted (an
// SVG or HTML object would run script there), and only when the bytes
// begin with that type's signature.
type mediaType struct {
	name  string // canonical name, stored and served
	kind  string
	ext   string // download file name extension
	label string // in the error message
	sniff func(b []byte) bool
}

// mediaTypes is the allow-list, in the order the error message names them.
var mediaTypes = []mediaType{
	{"image/jpeg", KindPhoto, ".jpg", "image/jpeg", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\xff\xd8\xff")) }},
	{"image/png", KindPhoto, ".png", "image/png", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) }},
	{"image/webp", KindPhoto, ".webp", "image/webp", func(b []byte) bool { return riff(b, "WEBP") }},
	{"audio/mpeg", KindAudio, ".mp3", "audio/mpeg", isMP3},
	{"audio/aac", KindAudio, ".aac", "audio/aac (ADTS)", isADTS},
	{"audio/ogg", KindAudio, ".ogg", "audio/ogg (Opus)", func(b []byte) bool { return bytes.HasPrefix(b, []byte("OggS")) }},
	{"audio/wav", KindAudio, ".wav", "audio/wav", func(b []byte) bool { return riff(b, "WAVE") }},
	{"audio/mp4", KindAudio, ".m4a", "audio/mp4", func(b []byte) bool { return len(b) >= 12 && string(b[4:8]) == "ftyp" }},
}

// mediaAliases are other names clients send for an allowed type.
var mediaAliases = map[string]string{
	"audio/x-wav": "audio/wav",
	"audio/wave":  "audio/wav",
	"audio/opus":  "audio/ogg",
	"audio/mp3":   "audio/mpeg",
	"audio/x-m4a": "audio/mp4",
}

// acceptedTypes is the sentence every refused upload ends with.
var acceptedTypes = func() string {
	var photo, audio []string
	for _, t := range mediaTypes {
		if t.kind == KindPhoto {
			photo = append(photo, t.label)
		} else {
			audio = append(audio, t.label)
		}
	}
	return "accepted are photos (" + strings.Join(photo, ", ") + ") and audio clips (" + strings.Join(audio, ", ") + ")"
}()

// lookupMediaType finds an allowed type by its (canonical or alias) name.
func lookupMediaType(name string) (mediaType, bool) {
	if c, ok := mediaAliases[name]; ok {
		name = c
	}
	for _, t := range mediaTypes {
		if t.name == name {
			return t, true
		}
	}
	return mediaType{}, false
}

// riff reports a RIFF file of the given form type (WEBP, WAVE).
func riff(b []byte, form string) bool {
	return len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == form
}

// isMP3: an ID3v2 tag or an MPEG audio frame header (layer I-III; layer
// bits 00 are ADTS's).
func isMP3(b []byte) bool {
	if bytes.HasPrefix(b, []byte("ID3")) {
		return true
	}
	return len(b) >= 3 && b[0] == 0xff && b[1]&0xe0 == 0xe0 &&
		(b[1]>>3)&3 != 1 && (b[1]>>1)&3 != 0 && b[2]>>4 != 15 && (b[2]>>2)&3 != 3
}

// isADTS: a 12-bit sync word, layer 00 and a defined sampling frequency.
func isADTS(b []byte) bool {
	return len(b) >= 7 && b[0] == 0xff && b[1]&0xf6 == 0xf0 && (b[2]>>2)&0xf < 13
}

// objectType decides an upload's kind and stored type from its
// Content-Type, ?kind= and its first bytes: a type off the allow-list, or
// bytes that are not that type, are refused.
func objectType(contentType, kind string, data []byte) (mediaType, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return mediaType{}, fmt.Errorf("%w: Content-Type %q is not a media type: %s", ErrBadRequest, contentType, acceptedTypes)
	}
	t, ok := lookupMediaType(mt)
	if !ok {
		return mediaType{}, fmt.Errorf("%w: Content-Type %q is not accepted: %s", ErrBadRequest, mt, acceptedTypes)
	}
	if kind != "" && kind != t.kind {
		return mediaType{}, fmt.Errorf("%w: kind %q does not match Content-Type %q", ErrBadRequest, kind, mt)
	}
	if len(data) > 0 && !t.sniff(data) {
		return mediaType{}, fmt.Errorf("%w: Content-Type %q: the body is not %s (its first bytes do not match); %s", ErrBadRequest, mt, t.label, acceptedTypes)
	}
	return t, nil
}

// servedType is how a stored object is served: inline with its own type
// when that type is allowed and the bytes match it, otherwise (an object
// stored before the allow-list, from an old data folder) as an
// application/octet-stream attachment.
func servedType(o Object, data []byte) (contentType, ext string, inline bool) {
	t, ok := lookupMediaType(o.ContentType)
	if !ok || t.kind != o.Kind || !t.sniff(data) {
		return "application/octet-stream", ".bin", false
	}
	return t.name, t.ext, true
}
