package ptz

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().Truncate(time.Second)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestController(t *testing.T, clock *testClock, configure func(*Controller)) *Controller {
	t.Helper()
	c := &Controller{Timeout: 2 * time.Second, Now: clock.Now}
	if configure != nil {
		configure(c)
	}
	if err := c.Initialize(); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func f(v float64) *float64 { return &v }

var alice = Holder{ID: "alice", Kind: KindUser}

func TestDoSendsCommandToCamera(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want fakeOp
	}{
		{"move pan tilt", Command{Op: OpMove, Pan: f(0.5), Tilt: f(-0.25)},
			fakeOp{Op: "ContinuousMove", Profile: "main_ptz", Pan: f(0.5), Tilt: f(-0.25)}},
		{"move zoom only", Command{Op: OpMove, Zoom: f(-1)},
			fakeOp{Op: "ContinuousMove", Profile: "main_ptz", Zoom: f(-1)}},
		{"stop", Command{Op: OpStop},
			fakeOp{Op: "Stop", Profile: "main_ptz"}},
		{"absolute", Command{Op: OpAbsolute, Pan: f(1), Tilt: f(0), Zoom: f(0.75)},
			fakeOp{Op: "AbsoluteMove", Profile: "main_ptz", Pan: f(1), Tilt: f(0), Zoom: f(0.75)}},
		{"relative pan only", Command{Op: OpRelative, Pan: f(0.125)},
			fakeOp{Op: "RelativeMove", Profile: "main_ptz", Pan: f(0.125), Tilt: f(0)}},
		{"goto preset", Command{Op: OpGotoPreset, Preset: "2"},
			fakeOp{Op: "GotoPreset", Profile: "main_ptz", Preset: "2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newFakeDevice(t, nil)
			clock := newTestClock()
			c := newTestController(t, clock, nil)
			res, err := c.Do(context.Background(), dev.camera(), alice, tt.cmd)
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if got := dev.accepted(); len(got) != 1 || !reflect.DeepEqual(got[0], tt.want) {
				t.Fatalf("camera received %+v, want [%+v]", got, tt.want)
			}
			wantRes := Result{Camera: "cam1", Op: tt.cmd.Op, Holder: Holder{ID: "alice", Kind: KindUser, Priority: 10},
				LeaseUntil: clock.Now().Add(5 * time.Second)}
			if res != wantRes {
				t.Fatalf("result %+v, want %+v", res, wantRes)
			}
		})
	}
}

func TestDiscovery(t *testing.T) {
	tests := []struct {
		name        string
		configure   func(*fakeDevice)
		wantProfile string
	}{
		{"GetServices, first profile with PTZ", nil, "main_ptz"},
		{"GetCapabilities fallback", func(d *fakeDevice) { d.getServicesFault = true }, "main_ptz"},
		{"Media2 only, relative XAddr", func(d *fakeDevice) { d.media20Only = true }, "m2"},
		{"no profile has PTZ: first profile", func(d *fakeDevice) {
			d.profiles = `<trt:Profiles token="a"/><trt:Profiles token="b"/>`
		}, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newFakeDevice(t, tt.configure)
			c := newTestController(t, newTestClock(), nil)
			for range 3 {
				if _, err := c.Do(context.Background(), dev.camera(), alice, Command{Op: OpStop}); err != nil {
					t.Fatalf("Do: %v", err)
				}
			}
			ops := dev.accepted()
			if len(ops) != 3 || ops[2].Profile != tt.wantProfile {
				t.Fatalf("camera received %+v, want 3 stops on profile %q", ops, tt.wantProfile)
			}
			// Discovery is two or three requests, once; then one per command.
			if n := dev.requestCount(); n > 3+3 {
				t.Fatalf("camera saw %d requests for 3 commands: discovery not cached", n)
			}
		})
	}
}

func TestDiscoveryRepeatsAfterCameraError(t *testing.T) {
	dev := newFakeDevice(t, nil)
	c := newTestController(t, newTestClock(), nil)
	cam := dev.camera()
	if _, err := c.Do(context.Background(), cam, alice, Command{Op: OpStop}); err != nil {
		t.Fatal(err)
	}
	before := dev.requestCount()
	cam.Password = "wrong"
	if _, err := c.Do(context.Background(), cam, alice, Command{Op: OpStop}); !errors.Is(err, ErrCamera) {
		t.Fatalf("err = %v, want ErrCamera", err)
	}
	cam.Password = dev.password
	if _, err := c.Do(context.Background(), cam, alice, Command{Op: OpStop}); err != nil {
		t.Fatal(err)
	}
	// 1 refused + GetServices + GetProfiles + Stop.
	if got := dev.requestCount() - before; got != 4 {
		t.Fatalf("after a camera error, %d requests; want rediscovery (4)", got)
	}
}

func TestPresets(t *testing.T) {
	dev := newFakeDevice(t, nil)
	c := newTestController(t, newTestClock(), nil)
	got, err := c.Presets(context.Background(), dev.camera(), alice)
	if err != nil {
		t.Fatalf("Presets: %v", err)
	}
	want := []Preset{
		{Token: "1", Name: "Gate", Pan: f(0.25), Tilt: f(-0.5), Zoom: f(0.1)},
		{Token: "2", Name: "Parking"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("presets %+v, want %+v", got, want)
	}
	if ops := dev.accepted(); len(ops) != 1 || ops[0].Profile != "main_ptz" {
		t.Fatalf("camera received %+v, want GetPresets on main_ptz", ops)
	}
	// Listing presets takes no lease: someone else may steer right away.
	bob := Holder{ID: "bob", Kind: KindUser}
	if _, err := c.Do(context.Background(), dev.camera(), bob, Command{Op: OpStop}); err != nil {
		t.Fatalf("Do after Presets by another holder: %v", err)
	}
}

func TestWrongPasswordIsCameraError(t *testing.T) {
	dev := newFakeDevice(t, nil)
	c := newTestController(t, newTestClock(), nil)
	cam := dev.camera()
	cam.Password = "guess"
	_, err := c.Do(context.Background(), cam, alice, Command{Op: OpMove, Pan: f(1)})
	var camErr *CameraError
	if !errors.Is(err, ErrCamera) || !errors.As(err, &camErr) || camErr.Code != "ter:NotAuthorized" {
		t.Fatalf("err = %v, want ErrCamera with ter:NotAuthorized", err)
	}
	status, body := HTTPError(err)
	if status != http.StatusBadGateway || !strings.Contains(body.Error, "Sender not Authorized") {
		t.Fatalf("HTTPError = %d %+v, want 502 with the fault reason", status, body)
	}
	if ops := dev.accepted(); len(ops) != 0 {
		t.Fatalf("camera accepted %+v with a wrong password", ops)
	}
}

func TestBadCommandReachesNothing(t *testing.T) {
	dev := newFakeDevice(t, nil)
	c := newTestController(t, newTestClock(), nil)
	for _, cmd := range []Command{
		{Op: OpMove, Pan: f(1.5)},
		{Op: "spin"},
		{Op: OpGotoPreset},
		{Op: OpAbsolute, Pan: f(0.1)},
		{Op: OpAbsolute, Zoom: f(-0.1)},
	} {
		_, err := c.Do(context.Background(), dev.camera(), alice, cmd)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("Do(%+v) = %v, want *FieldError", cmd, err)
		}
		if status, _ := HTTPError(err); status != http.StatusBadRequest {
			t.Errorf("Do(%+v): status %d, want 400", cmd, status)
		}
	}
	if n := dev.requestCount(); n != 0 {
		t.Fatalf("camera saw %d requests for invalid commands", n)
	}
	// Nor did they take the lease.
	if _, err := c.Do(context.Background(), dev.camera(), Holder{ID: "bob", Kind: KindUser}, Command{Op: OpStop}); err != nil {
		t.Fatalf("lease taken by invalid commands: %v", err)
	}
}

func TestLeaseBetweenControllers(t *testing.T) {
	dev := newFakeDevice(t, nil)
	clock := newTestClock()
	c := newTestController(t, clock, nil)
	ctx, cam := context.Background(), dev.camera()
	bob := Holder{ID: "bob", Kind: KindUser}
	pm := Holder{ID: "carol", Kind: KindPrivacyManager}
	move := Command{Op: OpMove, Pan: f(0.5)}

	if _, err := c.Do(ctx, cam, alice, move); err != nil {
		t.Fatalf("alice: %v", err)
	}
	clock.Advance(3 * time.Second)
	if _, err := c.Do(ctx, cam, alice, move); err != nil { // renews to +5s from now
		t.Fatalf("alice renew: %v", err)
	}
	clock.Advance(3 * time.Second) // past the first lease, inside the renewed one

	_, err := c.Do(ctx, cam, bob, move)
	var held *ErrLeaseHeld
	if !errors.As(err, &held) || held.Holder.ID != "alice" || !held.Until.Equal(clock.Now().Add(2*time.Second)) {
		t.Fatalf("bob: err = %v, want ErrLeaseHeld by alice until +2s", err)
	}
	status, body := HTTPError(err)
	if status != http.StatusConflict || body.Holder == nil || body.Holder.ID != "alice" || body.Until == nil ||
		!strings.Contains(body.Error, "alice") {
		t.Fatalf("HTTPError = %d %+v, want 409 naming alice and until", status, body)
	}

	if _, err := c.Do(ctx, cam, pm, Command{Op: OpStop}); err != nil {
		t.Fatalf("privacy manager take-over: %v", err)
	}
	if _, err := c.Do(ctx, cam, alice, move); !errors.As(err, &held) || held.Holder != (Holder{ID: "carol", Kind: KindPrivacyManager, Priority: 40}) {
		t.Fatalf("alice after take-over: err = %v, want held by carol", err)
	}

	clock.Advance(5 * time.Second) // carol idle for the TTL: the lease lapses
	if _, err := c.Do(ctx, cam, bob, move); err != nil {
		t.Fatalf("bob after lapse: %v", err)
	}
	if got, want := dev.acceptedOps(), []string{"ContinuousMove", "ContinuousMove", "Stop", "ContinuousMove"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("camera received %v, want %v (refused commands must not arrive)", got, want)
	}
}

func TestConfiguredPriorities(t *testing.T) {
	dev := newFakeDevice(t, nil)
	c := newTestController(t, newTestClock(), func(c *Controller) {
		c.Priorities = map[string]int{KindUser: 100, KindPrivacyManager: 1}
	})
	ctx := context.Background()
	pm := Holder{ID: "carol", Kind: KindPrivacyManager}
	if _, err := c.Do(ctx, dev.camera(), pm, Command{Op: OpStop}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, dev.camera(), alice, Command{Op: OpStop}); err != nil {
		t.Fatalf("user with configured higher priority: %v", err)
	}
	if _, err := c.Do(ctx, dev.camera(), pm, Command{Op: OpStop}); err == nil {
		t.Fatal("privacy manager took over despite configured lower priority")
	}
}

func TestRelease(t *testing.T) {
	dev := newFakeDevice(t, nil)
	c := newTestController(t, newTestClock(), nil)
	ctx, bob := context.Background(), Holder{ID: "bob", Kind: KindUser}
	if _, err := c.Do(ctx, dev.camera(), alice, Command{Op: OpStop}); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, dev.camera(), bob); err != nil { // not his: no effect
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, dev.camera(), bob, Command{Op: OpStop}); err == nil {
		t.Fatal("bob got the camera after releasing a lease he did not hold")
	}
	if err := c.Release(ctx, dev.camera(), alice); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, dev.camera(), bob, Command{Op: OpStop}); err != nil {
		t.Fatalf("bob after alice released: %v", err)
	}
}

func TestSlowCameraTimesOut(t *testing.T) {
	dev := newFakeDevice(t, func(d *fakeDevice) { d.block = true })
	c := newTestController(t, newTestClock(), func(c *Controller) { c.Timeout = 150 * time.Millisecond })
	start := time.Now()
	_, err := c.Do(context.Background(), dev.camera(), alice, Command{Op: OpStop})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("gave up after %v, want about the 150ms timeout", elapsed)
	}
	if status, body := HTTPError(err); status != http.StatusGatewayTimeout || strings.Contains(body.Error, "127.0.0.1") {
		t.Fatalf("HTTPError = %d %+v, want 504 without the camera address", status, body)
	}
}

// TestSetTimeoutWhileRunning: a reload's new timeout bounds the requests
// that follow.
func TestSetTimeoutWhileRunning(t *testing.T) {
	dev := newFakeDevice(t, func(d *fakeDevice) { d.block = true })
	c := newTestController(t, newTestClock(), func(c *Controller) { c.Timeout = time.Minute })
	c.SetTimeout(150 * time.Millisecond)
	c.SetTimeout(0) // ignored
	start := time.Now()
	_, err := c.Do(context.Background(), dev.camera(), alice, Command{Op: OpStop})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("gave up after %v, want about the 150ms set while running (not the 1m of Initialize)", elapsed)
	}
}

func TestUnreachableCamera(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c := newTestController(t, newTestClock(), nil)
	_, err = c.Presets(context.Background(), Camera{ID: "cam1", OnvifURL: "http://" + addr + "/onvif/device_service"}, alice)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v, want ErrUnreachable", err)
	}
	if status, body := HTTPError(err); status != http.StatusBadGateway || body.Error != "camera unreachable" {
		t.Fatalf("HTTPError = %d %+v, want 502 camera unreachable", status, body)
	}
}

func TestCameraWithoutPTZ(t *testing.T) {
	c := newTestController(t, newTestClock(), nil)
	for _, u := range []string{"", "rtsp://10.0.0.1/", "http://"} {
		_, err := c.Do(context.Background(), Camera{ID: "cam1", OnvifURL: u}, alice, Command{Op: OpStop})
		if status, _ := HTTPError(err); !errors.Is(err, ErrNotConfigured) || status != http.StatusNotFound {
			t.Errorf("onvif_url %q: err = %v (status %d), want ErrNotConfigured 404", u, err, status)
		}
	}
}

func TestControllerNotInitialized(t *testing.T) {
	var c Controller
	if _, err := c.Do(context.Background(), Camera{ID: "x", OnvifURL: "http://127.0.0.1/"}, alice, Command{Op: OpStop}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("err = %v, want ErrNotInitialized", err)
	}
	for _, bad := range []*Controller{{Timeout: -1}, {LeaseTTL: -time.Second}} {
		if err := bad.Initialize(); err == nil {
			t.Errorf("Initialize(Timeout %v, LeaseTTL %v) accepted a negative duration", bad.Timeout, bad.LeaseTTL)
		}
	}
}
