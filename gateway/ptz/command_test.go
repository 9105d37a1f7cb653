package ptz

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		body      string
		want      Command
		wantField string // "" means valid
	}{
		{`{"op":"move","pan":0.5,"tilt":-1}`, Command{Op: OpMove, Pan: f(0.5), Tilt: f(-1)}, ""},
		{`{"op":"stop"}`, Command{Op: OpStop}, ""},
		{`{"op":"stop","pan":0,"tilt":0}`, Command{Op: OpStop, Pan: f(0), Tilt: f(0)}, ""},
		{`{"op":"absolute","pan":1,"tilt":-1,"zoom":0}`, Command{Op: OpAbsolute, Pan: f(1), Tilt: f(-1), Zoom: f(0)}, ""},
		{`{"op":"absolute","zoom":1}`, Command{Op: OpAbsolute, Zoom: f(1)}, ""},
		{`{"op":"relative","zoom":-0.5}`, Command{Op: OpRelative, Zoom: f(-0.5)}, ""},
		{` {"op":"goto_preset","preset":"Gate 1"} `, Command{Op: OpGotoPreset, Preset: "Gate 1"}, ""},

		{`{"op":"move","pan":1.01}`, Command{}, "pan"},
		{`{"op":"move","tilt":-2}`, Command{}, "tilt"},
		{`{"op":"relative","zoom":1e300}`, Command{}, "zoom"},
		{`{"op":"move"}`, Command{}, "pan"},
		{`{"op":"absolute","tilt":0.5}`, Command{}, "pan"},
		{`{"op":"absolute","pan":0.5,"tilt":0,"zoom":-0.5}`, Command{}, "zoom"},
		{`{"op":"spin"}`, Command{}, "op"},
		{`{"op":""}`, Command{}, "op"},
		{`{}`, Command{}, "op"},
		{`{"op":"goto_preset"}`, Command{}, "preset"},
		{`{"op":"goto_preset","preset":"   "}`, Command{}, "preset"},
		{`{"op":"goto_preset","preset":"a\u0000b"}`, Command{}, "preset"},
		{`{"op":"goto_preset","preset":"` + strings.Repeat("x", 65) + `"}`, Command{}, "preset"},
		{`{"op":"move","pan":0.5,"speed":1}`, Command{}, "speed"},
		{`{"op":"move","pan":"fast"}`, Command{}, "pan"},
		{`{"op":"move","pan":0.5}{"op":"stop"}`, Command{}, "body"},
		{`{"op":"move",`, Command{}, "body"},
		{``, Command{}, "body"},
		{`[]`, Command{}, "body"},
		{`null`, Command{}, "op"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			got, err := ParseCommand([]byte(tt.body))
			if tt.wantField == "" {
				if err != nil || !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("ParseCommand = %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tt.wantField {
				t.Fatalf("ParseCommand err = %v, want *FieldError on %q", err, tt.wantField)
			}
			status, body := HTTPError(err)
			if status != http.StatusBadRequest || body.Field != tt.wantField || !strings.HasPrefix(body.Error, tt.wantField+": ") {
				t.Fatalf("HTTPError = %d %+v, want 400 naming %q", status, body, tt.wantField)
			}
		})
	}
}

func TestParseCommandTooLarge(t *testing.T) {
	body := `{"op":"stop","preset":"` + strings.Repeat("x", MaxCommandSize) + `"}`
	_, err := ParseCommand([]byte(body))
	if status, _ := HTTPError(err); !errors.Is(err, ErrCommandTooLarge) || status != http.StatusRequestEntityTooLarge {
		t.Fatalf("err = %v (status %d), want ErrCommandTooLarge 413", err, status)
	}
}

func TestValidateRejectsNonFinite(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		var fe *FieldError
		if err := (Command{Op: OpMove, Zoom: &v}).Validate(); !errors.As(err, &fe) || fe.Field != "zoom" {
			t.Errorf("zoom %v: err = %v, want *FieldError on zoom", v, err)
		}
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		`{"op":"move","pan":0.5,"tilt":-0.5,"zoom":0}`,
		`{"op":"goto_preset","preset":"1"}`,
		`{"op":"absolute","pan":1,"tilt":1,"zoom":1}`,
		`{"op":"stop","extra":true}`,
		`{"op":"relative","pan":-1e-9}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		cmd, err := ParseCommand(body)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) && !errors.Is(err, ErrCommandTooLarge) {
				t.Fatalf("error %v is neither *FieldError nor ErrCommandTooLarge", err)
			}
			if status, _ := HTTPError(err); status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("bad input mapped to %d", status)
			}
			return
		}
		if err := cmd.Validate(); err != nil {
			t.Fatalf("accepted command fails Validate: %v", err)
		}
		for _, v := range []*float64{cmd.Pan, cmd.Tilt, cmd.Zoom} {
			if v != nil && (*v < -1 || *v > 1) {
				t.Fatalf("accepted value %v outside [-1, 1]", *v)
			}
		}
		// An accepted command survives a round trip unchanged.
		again, err := json.Marshal(cmd)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseCommand(again)
		if err != nil || !reflect.DeepEqual(back, cmd) {
			t.Fatalf("round trip of %s: %+v, %v; want %+v", again, back, err, cmd)
		}
	})
}
