package config

import "reflect"

// Keys lists every leaf key of Config as a dotted yaml path, in the order
// of the struct ("data_dir", …, "rtsp.listen", …, "cameras"). They are the
// keys that have a CAMGATE_* variable: a list (of strings, or of structs
// such as cameras) is one key.
func Keys() []string {
	vars := envVars()
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.path
	}
	return out
}

// Diff returns the keys (as Keys names them) whose values differ between a
// and b, in Keys order. An empty list equals a nil one.
func Diff(a, b Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for _, v := range envVars() {
		fa, fb := va.FieldByIndex(v.index), vb.FieldByIndex(v.index)
		if fa.Kind() == reflect.Slice && fa.Len() == 0 && fb.Len() == 0 {
			continue
		}
		if !reflect.DeepEqual(fa.Interface(), fb.Interface()) {
			out = append(out, v.path)
		}
	}
	return out
}

// CopyKeys sets each named key of dst to its value in src; other keys of
// dst are not written (so a reader of one of them does not race with it).
// A name that is not a key is ignored.
func CopyKeys(dst *Config, src Config, keys []string) {
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	vd, vs := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src)
	for _, v := range envVars() {
		if want[v.path] {
			vd.FieldByIndex(v.index).Set(vs.FieldByIndex(v.index))
		}
	}
}
