package config

import (
	"reflect"
	"testing"
)

// FuzzLoad feeds arbitrary YAML to the file stage of Load. It must never
// panic; whatever it accepts must validate; and a config without secrets must
// survive a print/parse round trip (so `camgate` can show the effective config
// and it can be pasted back).
func FuzzLoad(f *testing.F) {
	f.Add([]byte("data_dir: ./d\nrtsp: {listen: ':8554'}\ncameras:\n  - {id: cam1, site: hq, source: 'builtin:demo', record: true}\n"))
	f.Add([]byte("archive: {retention: 1h}\nauth: {admin_keys: [aaaaaaaaaaaaaaaa]}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("rtsp: {listen: x, listen: y}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, nil)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		if !reflect.DeepEqual(cfg.Redacted(), cfg) {
			return
		}
		back, err := Parse([]byte(cfg.String()), nil)
		if err != nil {
			t.Fatalf("Parse(String()) = %v\n%s", err, cfg.String())
		}
		if !reflect.DeepEqual(back, cfg) {
			t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, cfg)
		}
	})
}
