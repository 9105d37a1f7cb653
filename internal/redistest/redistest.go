// Package redistest starts real redis-server processes for tests, on free
// ports (never 6379), with their data in the test's temporary folder: one
// server (Start), or a primary with replicas under three redis-sentinel
// processes (StartSentinel) for failover tests.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one redis-server process. Kill and Restart simulate an outage;
// with AOF (the default here) a restart keeps the data.
type Server struct {
	// Addr is host:port, URL redis://Addr/0.
	Addr string
	URL  string

	tb   testing.TB
	dir  string
	port int
	bin  string // redis-server or redis-sentinel
	args []string
	cmd  *exec.Cmd
	done chan struct{}
}

// Options adjust the server.
type Options struct {
	// NoPersistence runs without AOF: a restart comes back empty.
	NoPersistence bool
	// AppendFsync is the AOF fsync policy. Default "always".
	AppendFsync string
}

// Start runs redis-server on a free port until the test ends.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		// Fail, never skip: a suite that silently tests one store backend
		// is a suite that lies (scripts/test installs redis-server).
		tb.Fatal("redis-server not found on PATH: install it (Debian: apt-get install redis-server) or run scripts/test, which does")
	}
	return startServer(tb, o, nil)
}

// startServer runs redis-server with o and extra arguments (replication
// settings) on a free port.
func startServer(tb testing.TB, o Options, extra []string) *Server {
	tb.Helper()
	s := &Server{tb: tb, dir: tb.TempDir(), bin: "redis-server"}
	for attempt := 0; ; attempt++ {
		s.port = freePort(tb)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr + "/0"
		s.args = []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
			"--save", "", "--protected-mode", "no", "--loglevel", "warning"}
		if !o.NoPersistence {
			fsync := o.AppendFsync
			if fsync == "" {
				fsync = "always"
			}
			s.args = append(s.args, "--appendonly", "yes", "--appendfsync", fsync)
		}
		s.args = append(s.args, extra...)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			tb.Fatalf("redis-server: %v", err)
		}
	}
	tb.Cleanup(s.Kill)
	return s
}

func freePort(tb testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (s *Server) start() error {
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	c := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("exited on port %d: %w", s.port, err)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("not answering on port %d: %w", s.port, err)
		}
		time.Sleep(10 * time.Millisecond) // polling a process start-up, nothing to wait on
	}
}

// Kill stops the server abruptly (SIGKILL) and waits for it to exit.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port and folder.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	if err := s.start(); err != nil {
		s.tb.Fatalf("redis-server restart: %v", err)
	}
}

// Client returns a client for the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}
