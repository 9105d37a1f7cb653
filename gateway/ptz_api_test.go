package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestPTZNeedsPermission checks the gateway's side of PTZ: only callers with
// `ptz` reach the camera, bad input reaches nothing. (The ONVIF exchange
// itself is tested in gateway/ptz against a full fake device.)
func TestPTZNeedsPermission(t *testing.T) {
	var hits atomic.Int32
	cam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/soap+xml")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`<?xml version="1.0"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="en">fake camera</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>`))
	}))
	defer cam.Close()
	n := startNode(t, t.TempDir())
	mustCall(t, n, "PUT", "/devices/cam1", `{"site":"hq","kind":"camera","source":"builtin:demo","ptz":{"onvif_url":"`+cam.URL+`","username":"u","password":"p"}}`, 200)
	mustCall(t, n, "PUT", "/subjects/op", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/subjects/viewer", `{"kind":"user"}`, 200)
	mustCall(t, n, "PUT", "/grants/op", `{"subject":"op","device":"cam1","actions":["live","ptz"]}`, 200)
	mustCall(t, n, "PUT", "/grants/viewer", `{"subject":"viewer","device":"cam1","actions":["live"]}`, 200)

	post := func(tok, cam, body string) int {
		req, _ := http.NewRequest("POST", n.api+"/cameras/"+cam+"/ptz", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	move := `{"op":"move","pan":0.5}`
	if code := post(viewerToken(t, "viewer"), "cam1", move); code != 403 {
		t.Fatalf("viewer without ptz: %d", code)
	}
	if code := post(viewerToken(t, "op"), "cam1", `{"op":"move","pan":7}`); code != 400 {
		t.Fatalf("pan out of range: %d", code)
	}
	if code := post(viewerToken(t, "op"), "cam1", `{"op":"dance"}`); code != 400 {
		t.Fatalf("unknown op: %d", code)
	}
	if code := post(viewerToken(t, "op"), "nope", move); code != 404 {
		t.Fatalf("unknown camera: %d", code)
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the camera before an allowed command", hits.Load())
	}
	if code := post(viewerToken(t, "op"), "cam1", move); code != 502 || hits.Load() == 0 {
		t.Fatalf("allowed command: %d, camera hits %d (want the camera's fault as 502)", code, hits.Load())
	}
	audit := mustCall(t, n, "GET", "/audit", "", 200)
	if s := strings.ToLower(toJSON(audit)); !strings.Contains(s, "ptz cam1 move") {
		t.Fatalf("PTZ command not in the audit log: %s", s)
	}
}

func TestPTZPriorities(t *testing.T) {
	p := ptzPriorities([]string{"privacy_manager", "company", "installer", "user"})
	order := []string{"admin", "privacy_manager", "company", "installer", "user", "link"}
	for i := 1; i < len(order); i++ {
		if p[order[i-1]] <= p[order[i]] {
			t.Fatalf("%s (%d) should outrank %s (%d)", order[i-1], p[order[i-1]], order[i], p[order[i]])
		}
	}
	if p["employee"] != p["company"] || p["integrator"] != p["installer"] {
		t.Fatalf("inherited ranks: %v", p)
	}
	swapped := ptzPriorities([]string{"user", "company"})
	if swapped["user"] <= swapped["company"] {
		t.Fatalf("configured order not applied: %v", swapped)
	}
}
