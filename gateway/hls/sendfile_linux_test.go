//go:build linux

package hls

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// memfdSegment is the sendfile alternative to serving a cached segment with
// SetBodyRaw (one writev of header and body), kept here so that
// BenchmarkSegmentHTTP measures both in one run. The server does not use it:
// on this project's bench machine (loopback, kernel 6.18, 2 vCPUs) it costs
// more CPU per request than writev, in this benchmark (64 KB segments,
// about +30 % process CPU) and against a plain fasthttp server serving
// 500 KB the same two ways (about +15 % server CPU, median of 13
// alternating rounds). sendfile from shmem is not free: splicing a page into
// the pipe and onto the socket costs about what copying it does, and the
// response goes out as two writes (fasthttp flushes the header, then
// sendfile), which costs an extra packet and client wakeup; corking the
// socket around the two did not help.
//
// The body is in a sealed memfd. sendfile(2) reads from the file position,
// so concurrent requests each need their own file description: a pool of
// descriptions, each opened once through /proc/self/fd/N and rewound per
// request (one lseek), instead of an open, four fcntl, a failed epoll_ctl
// and a close per request as a fresh os.Open costs.
type memfdSegment struct {
	path string // /proc/self/fd/N of the memfd
	size int64

	mu   sync.Mutex // guards free and all
	free []*os.File
	all  []*os.File
}

func newMemfdSegment(body []byte) (*memfdSegment, error) {
	fd, err := unix.MemfdCreate("camgate-hls-segment", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd:camgate-hls-segment")
	if _, err := f.Write(body); err != nil {
		_ = f.Close()
		return nil, err
	}
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("memfd seals: %w", err)
	}
	s := &memfdSegment{path: "/proc/self/fd/" + strconv.Itoa(fd), size: int64(len(body))}
	s.all = append(s.all, f)
	s.free = append(s.free, f)
	return s, nil
}

// acquire returns a description of the segment positioned at its start.
func (s *memfdSegment) acquire() (*os.File, error) {
	s.mu.Lock()
	if n := len(s.free); n > 0 {
		f := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			s.release(f)
			return nil, err
		}
		return f, nil
	}
	s.mu.Unlock()
	// A new description (own file position), not a dup of the memfd's.
	fd, err := unix.Open(s.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), s.path)
	s.mu.Lock()
	s.all = append(s.all, f)
	s.mu.Unlock()
	return f, nil
}

func (s *memfdSegment) release(f *os.File) {
	s.mu.Lock()
	s.free = append(s.free, f)
	s.mu.Unlock()
}

// descriptions is how many descriptions the pool has opened.
func (s *memfdSegment) descriptions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

func (s *memfdSegment) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.all {
		_ = f.Close()
	}
	s.all, s.free = nil, nil
}

// serve sets the response body to the segment; fasthttp closes the stream
// (returning the description) once it is written, or when the response is
// reset.
func (s *memfdSegment) serve(ctx *fasthttp.RequestCtx) error {
	f, err := s.acquire()
	if err != nil {
		return err
	}
	ctx.SetContentType("video/mp4")
	ctx.Response.Header.Set("Cache-Control", mediaCacheControl)
	ctx.Response.SetBodyStream(&memfdBody{seg: s, lr: io.LimitedReader{R: f, N: s.size}}, int(s.size))
	return nil
}

// memfdBody is one response's read of the segment. Handing fasthttp the
// *os.File inside an io.LimitedReader is what reaches sendfile: fasthttp's
// fixed-size body writer flushes the header when the stream is a file, then
// bufio.Writer.ReadFrom → net.TCPConn.ReadFrom → sendfile (strace: one
// write of the header and one sendfile per request).
type memfdBody struct {
	seg *memfdSegment
	lr  io.LimitedReader
}

func (b *memfdBody) Read(p []byte) (int, error)         { return b.lr.Read(p) }
func (b *memfdBody) SupportsBodyWriteTo() bool          { return true }
func (b *memfdBody) WriteTo(w io.Writer) (int64, error) { return io.Copy(w, &b.lr) }

func (b *memfdBody) Close() error {
	f, ok := b.lr.R.(*os.File)
	if !ok {
		return errors.New("memfd body closed twice")
	}
	b.lr.R = nil
	b.seg.release(f)
	return nil
}

// sendfileHandlers adds the sendfile alternative to BenchmarkSegmentHTTP:
// the segment's bytes from a memfd instead of from memory, after the same
// authorization.
func sendfileHandlers(b *testing.B, f *segmentFixture) []segmentHandler {
	seg, err := newMemfdSegment(f.bytes)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(seg.close)
	return []segmentHandler{{"authorized-sendfile", func(ctx *fasthttp.RequestCtx) {
		if _, err := f.srv.authorize("cam1", []byte(f.sid), time.Now()); err != nil {
			writeError(ctx, err)
			return
		}
		if err := seg.serve(ctx); err != nil {
			writeError(ctx, err)
		}
	}}}
}

// TestMemfdSegment: every request gets the whole segment, descriptions are
// reused (not one per request) and none is left open.
func TestMemfdSegment(t *testing.T) {
	body := make([]byte, 300_000)
	for i := range body {
		body[i] = byte(i % 251)
	}
	seg, err := newMemfdSegment(body)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		var ctx fasthttp.RequestCtx
		if err := seg.serve(&ctx); err != nil {
			t.Fatal(err)
		}
		if got := ctx.Response.Body(); string(got) != string(body) { // reads the stream, then closes it
			t.Fatalf("body of %d bytes differs", len(got))
		}
	}
	if n := seg.descriptions(); n != 1 {
		t.Fatalf("%d descriptions opened for sequential requests, want 1", n)
	}
	var ctxs [3]fasthttp.RequestCtx
	for i := range ctxs { // in flight together: one description each
		if err := seg.serve(&ctxs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ctxs {
		ctxs[i].Response.Reset() // closes the stream unread
	}
	if n := seg.descriptions(); n != 3 {
		t.Fatalf("%d descriptions for 3 concurrent requests, want 3", n)
	}
	var ctx fasthttp.RequestCtx
	if err := seg.serve(&ctx); err != nil {
		t.Fatal(err)
	}
	if got := ctx.Response.Body(); string(got) != string(body) { // a reused description starts at 0
		t.Fatalf("body of %d bytes differs", len(got))
	}
	opened := append([]*os.File(nil), seg.all...)
	seg.close()
	for _, f := range opened {
		if f.Fd() != ^uintptr(0) {
			t.Fatalf("%s left open", f.Name())
		}
	}
}
