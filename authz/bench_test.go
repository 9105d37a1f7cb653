package authz

import (
	"encoding/json"
	"testing"
)

func jsonMarshal(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// BenchmarkCheckL1Hit: the hot path of every RTSP PLAY and HLS segment.
func BenchmarkCheckL1Hit(b *testing.B) {
	h := newHarness(&testing.T{})
	defer h.s.Close()
	h.base()
	h.must(root, "PUT", "/grants/g1", map[string]any{"subject": "alice", "site": "hq", "actions": []string{"live", "sound"}})
	now := h.clk.Now()
	if !h.s.Check("alice", "cam2", ActionLive, now).Allowed {
		b.Fatal("setup: alice must have live on cam2")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !h.s.Check("alice", "cam2", ActionLive, now).Allowed {
			b.Fatal("denied")
		}
	}
}
