package ptz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Operations a Command may ask for.
const (
	OpMove       = "move"        // ContinuousMove: pan/tilt/zoom are velocities in [-1, 1]
	OpStop       = "stop"        // Stop pan, tilt and zoom
	OpAbsolute   = "absolute"    // AbsoluteMove: pan/tilt in [-1, 1], zoom in [0, 1]
	OpRelative   = "relative"    // RelativeMove: pan/tilt/zoom are translations in [-1, 1]
	OpGotoPreset = "goto_preset" // GotoPreset: preset is the camera's preset token
)

// MaxCommandSize bounds a command body; a real command is well under 200 bytes.
const MaxCommandSize = 4 << 10

// maxPresetLen is ONVIF's ReferenceToken limit.
const maxPresetLen = 64

// Command is one PTZ request as sent to POST /api/v1/cameras/{camera}/ptz.
// Fields an op does not use are ignored, but still range-checked.
type Command struct {
	Op     string   `json:"op"`
	Pan    *float64 `json:"pan,omitempty"`
	Tilt   *float64 `json:"tilt,omitempty"`
	Zoom   *float64 `json:"zoom,omitempty"`
	Preset string   `json:"preset,omitempty"`
}

// FieldError says which field of a command is wrong and why (HTTP 400).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("ptz: %s: %s", e.Field, e.Reason)
}

// ErrCommandTooLarge is returned by ParseCommand for a body over MaxCommandSize (HTTP 413).
var ErrCommandTooLarge = errors.New("ptz: command body too large")

// ParseCommand decodes and validates a command body. Unknown fields, trailing
// data and invalid values are *FieldError; nothing of a rejected command may
// reach a camera.
func ParseCommand(body []byte) (Command, error) {
	if len(body) > MaxCommandSize {
		return Command{}, ErrCommandTooLarge
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var cmd Command
	if err := dec.Decode(&cmd); err != nil {
		return Command{}, jsonFieldError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Command{}, &FieldError{Field: "body", Reason: "trailing data after the JSON object"}
	}
	if err := cmd.Validate(); err != nil {
		return Command{}, err
	}
	return cmd, nil
}

// jsonFieldError names the offending field where encoding/json lets us.
func jsonFieldError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return &FieldError{Field: typeErr.Field, Reason: "must be a " + jsonKind(typeErr.Type.Kind().String())}
	}
	// encoding/json reports unknown fields only as text.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return &FieldError{Field: strings.Trim(name, `"`), Reason: "unknown field"}
	}
	if errors.Is(err, io.EOF) {
		return &FieldError{Field: "body", Reason: "empty; want a JSON object"}
	}
	return &FieldError{Field: "body", Reason: "not a JSON object: " + err.Error()}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "float64":
		return "number"
	case "string":
		return "string"
	default:
		return "value of another type"
	}
}

// Validate checks the command without talking to anyone.
func (c Command) Validate() error {
	for _, a := range []struct {
		name string
		v    *float64
	}{{"pan", c.Pan}, {"tilt", c.Tilt}, {"zoom", c.Zoom}} {
		// Written as a negated range so NaN fails too.
		if a.v != nil && !(*a.v >= -1 && *a.v <= 1) {
			return &FieldError{Field: a.name, Reason: fmt.Sprintf("%v is outside [-1, 1]", *a.v)}
		}
	}
	switch c.Op {
	case OpMove, OpRelative:
		if c.Pan == nil && c.Tilt == nil && c.Zoom == nil {
			return &FieldError{Field: "pan", Reason: c.Op + " needs at least one of pan, tilt, zoom"}
		}
	case OpAbsolute:
		if c.Pan == nil && c.Tilt == nil && c.Zoom == nil {
			return &FieldError{Field: "pan", Reason: "absolute needs pan and tilt, zoom, or all three"}
		}
		// A camera has no "current value" we could fill in for the missing axis.
		if (c.Pan == nil) != (c.Tilt == nil) {
			return &FieldError{Field: missing(c.Pan, "pan", "tilt"), Reason: "absolute needs pan and tilt together"}
		}
		if c.Zoom != nil && *c.Zoom < 0 {
			return &FieldError{Field: "zoom", Reason: fmt.Sprintf("%v is outside [0, 1] for an absolute zoom", *c.Zoom)}
		}
	case OpStop:
	case OpGotoPreset:
		if err := validatePreset(c.Preset); err != nil {
			return err
		}
	case "":
		return &FieldError{Field: "op", Reason: "required: move, stop, absolute, relative or goto_preset"}
	default:
		return &FieldError{Field: "op", Reason: fmt.Sprintf("unknown op %q: want move, stop, absolute, relative or goto_preset", c.Op)}
	}
	if c.Op != OpGotoPreset && c.Preset != "" {
		if err := validatePreset(c.Preset); err != nil {
			return err
		}
	}
	return nil
}

func missing(pan *float64, panName, tiltName string) string {
	if pan == nil {
		return panName
	}
	return tiltName
}

func validatePreset(p string) error {
	switch {
	case strings.TrimSpace(p) == "":
		return &FieldError{Field: "preset", Reason: "required for goto_preset"}
	case len(p) > maxPresetLen:
		return &FieldError{Field: "preset", Reason: fmt.Sprintf("longer than %d bytes", maxPresetLen)}
	case !utf8.ValidString(p):
		return &FieldError{Field: "preset", Reason: "not valid UTF-8"}
	case strings.ContainsFunc(p, unicode.IsControl):
		// XML 1.0 cannot carry most control characters.
		return &FieldError{Field: "preset", Reason: "contains control characters"}
	}
	return nil
}
