package authz_test

import (
	"context"
	"fmt"

	. "github.com/camgate/camgate/authz"

	"errors"
	"strings"
	"testing"
	"time"
)

// The typed methods are the JSON API's rules as Go calls: the same
// refusals for each caller kind, the same field errors, the same cascades
// and the same audit trail.
func TestTypedAPIHoldsTheSameRules(t *testing.T) {
	h := newHarness(t)
	h.base()
	ctx := t.Context()
	alice := viewer("alice")

	if _, _, err := h.s.PutGrant(ctx, Caller{}, Grant{Subject: "alice", Device: "cam1", Actions: []string{"live"}}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("anonymous PutGrant: %v; want ErrForbidden", err)
	}
	rev := h.s.RevForTest()
	if _, _, err := h.s.PutGrant(ctx, alice, Grant{ID: "self", Subject: "alice", Device: "cam1", Actions: []string{"live"}}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("viewer grants itself: %v; want ErrForbidden", err)
	}
	var fe *FieldError
	if _, _, err := h.s.PutGrant(ctx, root, Grant{Subject: "zed", Device: "cam1", Actions: []string{"live"}}); !errors.As(err, &fe) || fe.Field != "subject" {
		t.Fatalf("grant to an unknown subject: %v; want a FieldError naming subject", err)
	}
	if _, _, err := h.s.PutDevice(ctx, root, Device{ID: "../x", Site: "hq"}); !errors.As(err, &fe) || fe.Field != "id" {
		t.Fatalf("bad id: %v; want a FieldError naming id", err)
	}
	if h.s.RevForTest() != rev {
		t.Fatal("a refused typed write changed the store")
	}

	g, created, err := h.s.PutGrant(ctx, root, Grant{ID: "g1", Subject: "alice", Site: "hq", Actions: []string{"live"}, Source: SourceBulk})
	if err != nil || !created || g.Source != SourceManual {
		t.Fatalf("PutGrant = %+v, %v, %v; want created, source manual (read-only fields are the service's)", g, created, err)
	}
	if !h.allowed("alice", "cam2", ActionLive) {
		t.Fatal("a site grant on hq does not reach cam2 in sub-site lobby")
	}
	if err := h.s.DeleteSite(ctx, root, "hq"); !errors.Is(err, ErrConflict) {
		t.Fatalf("DeleteSite with devices: %v; want ErrConflict", err)
	}
	if err := h.s.DeleteDevice(ctx, root, "cam1"); err != nil {
		t.Fatal(err)
	}
	if err := h.s.DeleteGrant(ctx, root, "g1"); err != nil || h.allowed("alice", "cam2", ActionLive) {
		t.Fatalf("DeleteGrant: %v; alice keeps live: %v", err, h.allowed("alice", "cam2", ActionLive))
	}

	if _, err := h.s.Arm(ctx, alice, "lobby", true); !errors.Is(err, ErrForbidden) {
		t.Fatalf("viewer arms: %v; want ErrForbidden", err)
	}
	if _, err := h.s.Arm(ctx, root, "nowhere", true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("arm a missing site: %v; want ErrNotFound", err)
	}
	if site, err := h.s.Arm(ctx, root, "lobby", true); err != nil || !site.Armed {
		t.Fatalf("Arm = %+v, %v", site, err)
	}
	if until, err := h.s.Alarm(ctx, root, "cam2"); err != nil || !until.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("Alarm = %v, %v; want until %v", until, err, t0.Add(30*time.Minute))
	}

	res, err := h.s.BulkAccess(ctx, root, BulkRequest{Subjects: []string{"alice", "bob"}, Devices: []string{"cam2"}, Actions: []string{"live"}})
	if err != nil || len(res.Grants) != 2 || res.Pairs != 2 || !h.allowed("bob", "cam2", ActionLive) {
		t.Fatalf("BulkAccess = %+v, %v", res, err)
	}
	if _, err := h.s.BulkAccess(ctx, alice, BulkRequest{Subjects: []string{"bob"}, Devices: []string{"cam2"}}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("viewer bulk access: %v; want ErrForbidden", err)
	}

	if _, _, err := h.s.PutGrant(ctx, root, Grant{ID: "bob-share", Subject: "bob", Device: "cam2", Actions: []string{"live", "share"}}); err != nil {
		t.Fatal(err)
	}
	sh, _, err := h.s.PutShare(ctx, root, Share{ID: "sh1", Device: "cam2", Owner: "bob", RecipientEmail: "alice@example.com", Actions: []string{"live"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.AnswerShare(ctx, viewer("bob"), sh.ID, true); !errors.Is(err, ErrForbidden) {
		t.Fatalf("the owner accepts its own share: %v; want ErrForbidden", err)
	}
	if got, err := h.s.AnswerShare(ctx, alice, sh.ID, true); err != nil || got.State != ShareAccepted {
		t.Fatalf("AnswerShare = %+v, %v", got, err)
	}

	if d, err := h.s.CheckAs(ctx, alice, CheckQuery{Device: "cam2", Action: ActionLive}); err != nil || !d.Allowed {
		t.Fatalf("alice CheckAs herself = %+v, %v; want allowed", d, err)
	}
	if _, err := h.s.CheckAs(ctx, alice, CheckQuery{Subject: "bob", Device: "cam2", Action: ActionLive}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("alice CheckAs about bob: %v; want ErrForbidden", err)
	}
	if d, err := h.s.CheckAs(ctx, alice, CheckQuery{Device: "nope", Action: ActionLive}); err != nil || d.Allowed || strings.Contains(d.Reason, "unknown_device") {
		t.Fatalf("alice CheckAs an unknown device = %+v, %v; want a plain deny", d, err)
	}
	if _, err := h.s.CheckAs(ctx, root, CheckQuery{Subject: "bob", Device: "cam2"}); !errors.As(err, &fe) || fe.Field != "action" {
		t.Fatalf("CheckAs without an action: %v; want a FieldError naming action", err)
	}

	// Typed writes leave the entries the JSON API leaves.
	var saw []string
	entries := h.s.AuditForTest()
	for _, e := range entries {
		saw = append(saw, e.Who+" "+e.What)
	}
	for _, want := range []string{"root PUT grants/g1", "root DELETE devices/cam1", "subject:alice POST sites/lobby/arm", "root POST bulk-access", "subject:alice POST shares/sh1/accept"} {
		if !strings.Contains(strings.Join(saw, "\n"), want) {
			t.Errorf("audit lacks %q; has %q", want, saw)
		}
	}
}

// PutDevices writes many devices in one commit, each held to PutDevice's
// rules; a bad one refuses the whole batch, naming it, and changes nothing.
func TestPutDevicesOneCommit(t *testing.T) {
	h := newHarness(t)
	h.base()
	h.must(root, "PUT", "/subjects/inst", map[string]any{"kind": "installer", "sites": []string{"hq"}})
	ctx := context.Background()
	var ds []Device
	for i := range 500 {
		ds = append(ds, Device{ID: fmt.Sprintf("bulk%03d", i), Site: "hq", Kind: DeviceCamera, Source: "builtin:demo"})
	}
	rev := h.s.RevForTest()
	n, err := h.s.PutDevices(ctx, root, ds)
	if err != nil || n != 500 {
		t.Fatalf("PutDevices: %d %v", n, err)
	}
	if got := h.s.RevForTest(); got != rev+1 {
		t.Fatalf("500 devices took %d commits; want 1", got-rev)
	}
	// Rule 6 holds for each new camera, as with PutDevice.
	if !h.allowed("inst", "bulk499", ActionSettings) {
		t.Fatal("a camera created in a batch gave its site's installer no temporary access")
	}
	// Replacing: nothing new is created.
	ds[0].Name = "renamed"
	if n, err := h.s.PutDevices(ctx, root, ds[:2]); err != nil || n != 0 {
		t.Fatalf("replace: %d %v", n, err)
	}
	rev = h.s.RevForTest()
	for name, bad := range map[string][]Device{
		"devices[1].site": {{ID: "ok1", Site: "hq", Kind: DeviceCamera, Source: "builtin:demo"}, {ID: "bad", Site: "nowhere", Kind: DeviceCamera, Source: "builtin:demo"}},
		"devices[1].id":   {{ID: "dup", Site: "hq", Kind: DeviceCamera, Source: "builtin:demo"}, {ID: "dup", Site: "hq", Kind: DeviceCamera, Source: "builtin:demo"}},
	} {
		_, err := h.s.PutDevices(ctx, root, bad)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != name {
			t.Errorf("%s: %v; want a FieldError naming it", name, err)
		}
	}
	if _, err := h.s.PutDevices(ctx, viewer("alice"), ds[:1]); !errors.Is(err, ErrForbidden) {
		t.Errorf("a viewer's batch: %v; want forbidden", err)
	}
	if h.s.RevForTest() != rev {
		t.Fatal("a refused batch changed the model")
	}
	if _, ok := h.s.Device("ok1"); ok {
		t.Fatal("the good device of a refused batch was stored")
	}
}
