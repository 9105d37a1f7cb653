package webrtc

import (
	"net"
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// answerCandidates returns the address and port of every candidate in an
// answer.
func answerCandidates(answer string) [][2]string {
	var out [][2]string
	for _, m := range regexp.MustCompile(`a=candidate:\S+ \d+ udp \d+ (\S+) (\d+) typ`).FindAllStringSubmatch(answer, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

func TestICEConfiguration(t *testing.T) {
	t.Run("mux on one port", func(t *testing.T) {
		h := newHarness(t)
		v := h.play(t, "bob")
		_, port, err := net.SplitHostPort(h.srv.UDPMuxAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range answerCandidates(v.answer) {
			if c[0] != "127.0.0.1" || c[1] != port {
				t.Fatalf("candidate %v, want the mux %s", c, h.srv.UDPMuxAddr())
			}
		}
		v.nextTrack(t)
	})
	t.Run("ephemeral ports in range", func(t *testing.T) {
		h := newHarness(t, func(s *Server) { s.UDPMuxAddress, s.PortMin, s.PortMax = "", 41000, 41999 })
		v := h.play(t, "bob")
		cands := answerCandidates(v.answer)
		if len(cands) == 0 {
			t.Fatal("no candidates in the answer")
		}
		for _, c := range cands {
			if p, _ := strconv.Atoi(c[1]); p < 41000 || p > 41999 {
				t.Fatalf("candidate %v outside the port range", c)
			}
		}
		if units := h264Units(t, v.nextTrack(t), 1); len(units) == 0 {
			t.Fatal("no video")
		}
	})
	t.Run("NAT 1:1", func(t *testing.T) {
		h := newHarness(t, func(s *Server) { s.NAT1To1IPs = []string{"203.0.113.7"} })
		res := h.do(t, "POST", "/whep/cam1", "bob", "application/sdp", newViewerPC(t).offer(t))
		if res.status != http.StatusCreated {
			t.Fatalf("POST %d %s", res.status, res.body)
		}
		cands := answerCandidates(res.body)
		if len(cands) == 0 {
			t.Fatal("no candidates in the answer")
		}
		for _, c := range cands {
			if c[0] != "203.0.113.7" {
				t.Fatalf("candidate %v, want the public IP", c)
			}
		}
	})
}

func TestInitializeValidates(t *testing.T) {
	cases := []struct {
		name string
		set  func(*Server)
	}{
		{"no hub", nil},
		{"port range reversed", func(s *Server) { s.PortMin, s.PortMax = 5000, 4000 }},
		{"NAT IP not an IP", func(s *Server) { s.NAT1To1IPs = []string{"example.com"} }},
		{"mux address invalid", func(s *Server) { s.UDPMuxAddress = "256.0.0.1:1" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &Server{}
			if c.set != nil {
				c.set(s)
				h := newHarness(t)
				s.Hub, s.Admitter, s.Sessions = h.hub, h.adm, h.reg
			}
			if err := s.Initialize(); err == nil {
				t.Fatal("Initialize accepted it")
			}
		})
	}
}
