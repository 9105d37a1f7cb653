package recorder

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"

	"github.com/camgate/camgate/archive"
	"github.com/camgate/camgate/gateway/stream"
	"github.com/camgate/camgate/internal/poll"
)

// hubFunc is a Hub made of a function.
type hubFunc func(ctx context.Context, camera string) (*stream.Stream, func(), error)

func (f hubFunc) Acquire(ctx context.Context, camera string) (*stream.Stream, func(), error) {
	return f(ctx, camera)
}

// A camera whose only track the archive cannot store is acquired once,
// then waits in cannot_record (with a 1 ms backoff the old loop re-acquired
// it at once); Retry acquires it once more.
func TestCannotRecordWaitsForRetry(t *testing.T) {
	store := &archive.Store{Dir: t.TempDir(), Authorizer: &fakeAuthorizer{}}
	if err := store.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var acquired atomic.Int32
	hub := hubFunc(func(context.Context, string) (*stream.Stream, func(), error) {
		acquired.Add(1)
		st := stream.New("cam1")
		desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{&format.VP8{PayloadTyp: 96}}}}}
		if err := st.SetDescription(desc); err != nil {
			t.Error(err)
		}
		return st, st.Close, nil
	})
	m := &Manager{Hub: hub, Archive: store, RetryMin: time.Millisecond, RetryMax: time.Millisecond}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Start("cam1")
	state := func() State { return m.States()["cam1"] }
	poll.Until(t, "cannot_record", func() bool { return state().State == StateCannotRecord })
	if !strings.Contains(state().Reason, "video/VP8") || acquired.Load() != 1 {
		t.Fatalf("state %+v after %d acquisitions", state(), acquired.Load())
	}
	m.Retry("cam1")
	poll.Until(t, "a second acquisition", func() bool { return acquired.Load() == 2 })
	poll.Until(t, "cannot_record again", func() bool { return state().State == StateCannotRecord })
	m.Stop("cam1")
	if acquired.Load() != 2 {
		t.Fatalf("%d acquisitions, want 2", acquired.Load())
	}
}
