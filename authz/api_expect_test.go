package authz_test

import (
	. "github.com/camgate/camgate/authz"

	"errors"
	"strings"
	"testing"
)

// expectRefused runs one request inside a subtest (so a failure names the
// case and the other cases still run) and checks that it fails as a 400
// naming field (field != "") or with want, that the message mentions why
// (when set), and that the store did not change.
func expectRefused(t *testing.T, h *harness, c Caller, method, path string, body any, want error, field, why string) {
	t.Helper()
	rev := h.s.RevForTest()
	_, err := h.call(c, method, path, body)
	switch {
	case err == nil:
		t.Fatalf("%s %s as %v: succeeded; want %v%s", method, path, c, want, field)
	case field != "":
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Fatalf("%s %s as %v: %v; want a 400 naming %q", method, path, c, err, field)
		}
	case !errors.Is(err, want):
		t.Fatalf("%s %s as %v: %v; want %v", method, path, c, err, want)
	}
	if why != "" && !strings.Contains(err.Error(), why) {
		t.Fatalf("%s %s as %v: %v; want the message to say %q", method, path, c, err, why)
	}
	if h.s.RevForTest() != rev {
		t.Fatalf("%s %s as %v was refused but changed the store (rev %d → %d)", method, path, c, rev, h.s.RevForTest())
	}
}
