package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/internal/poll"
)

// MasterName is the name the sentinels monitor the primary under.
const MasterName = "camgate"

// SentinelOptions shape a replicated group under Sentinel.
type SentinelOptions struct {
	// Replicas is the number of replicas of the primary. Default 1.
	Replicas int
	// MinReplicasToWrite and MinReplicasMaxLag (seconds) are set on every
	// server (any may become the primary), as docs/redis.md recommends.
	// Default 1 and 10; MinReplicasToWrite -1 turns the check off.
	MinReplicasToWrite int
	MinReplicasMaxLag  int
	// DownAfter is the sentinels' down-after-milliseconds: how long the
	// primary must be silent before it is considered down. Default 1s.
	DownAfter time.Duration
	// FailoverTimeout is the sentinels' failover-timeout. Default 5s.
	FailoverTimeout time.Duration
}

// Group is a primary, its replicas and three sentinels, all on free
// loopback ports, stopped when the test ends.
type Group struct {
	Primary   *Server
	Replicas  []*Server
	Sentinels []*Server
	// URL is the redis.url for the group: every sentinel, master_name set
	// (see authz/redisstore.ParseURL).
	URL string

	tb testing.TB
}

// StartSentinel starts the group and returns once the replicas are in sync
// and the three sentinels know the replicas and each other, so a failover
// can happen as soon as the test kills the primary.
func StartSentinel(tb testing.TB, o SentinelOptions) *Group {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-sentinel"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s not found on PATH: install it (Debian: apt-get install redis-server redis-sentinel) or run scripts/test, which does", bin)
		}
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MinReplicasToWrite == 0 {
		o.MinReplicasToWrite = 1
	}
	if o.MinReplicasMaxLag <= 0 {
		o.MinReplicasMaxLag = 10
	}
	if o.DownAfter <= 0 {
		o.DownAfter = time.Second
	}
	if o.FailoverTimeout <= 0 {
		o.FailoverTimeout = 5 * time.Second
	}
	repl := []string{
		// Diskless sync without the default 5 s delay: a replica that must
		// resync from a new primary does it at once.
		"--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
		"--min-replicas-to-write", strconv.Itoa(max(o.MinReplicasToWrite, 0)),
		"--min-replicas-max-lag", strconv.Itoa(o.MinReplicasMaxLag),
	}
	g := &Group{tb: tb}
	g.Primary = startServer(tb, Options{}, repl)
	for range o.Replicas {
		host, port, _ := net.SplitHostPort(g.Primary.Addr)
		g.Replicas = append(g.Replicas, startServer(tb, Options{}, append([]string{"--replicaof", host, port}, repl...)))
	}
	pc := redis.NewClient(&redis.Options{Addr: g.Primary.Addr})
	defer pc.Close()
	poll.Within(tb, 10*time.Second, "redistest: the replicas to be in sync", func() bool {
		return g.syncedReplicas(pc) == o.Replicas
	})

	var addrs []string
	for range 3 {
		s := g.startSentinelProc(o)
		g.Sentinels = append(g.Sentinels, s)
		addrs = append(addrs, s.Addr)
	}
	g.URL = "redis://" + addrs[0] + "/0?master_name=" + MasterName + "&addr=" + addrs[1] + "&addr=" + addrs[2]
	poll.Within(tb, 15*time.Second, "redistest: the sentinels to know the replicas and each other", func() bool {
		for _, s := range g.Sentinels {
			m, err := g.sentinelMaster(s)
			if err != nil || m["num-other-sentinels"] != "2" || m["num-slaves"] != strconv.Itoa(o.Replicas) {
				return false
			}
		}
		return true
	})
	return g
}

// startSentinelProc writes a sentinel's configuration file (Sentinel
// rewrites it, so each has its own) and runs redis-sentinel on it.
func (g *Group) startSentinelProc(o SentinelOptions) *Server {
	host, port, _ := net.SplitHostPort(g.Primary.Addr)
	s := &Server{tb: g.tb, dir: g.tb.TempDir(), bin: "redis-sentinel"}
	for attempt := 0; ; attempt++ {
		s.port = freePort(g.tb)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		conf := filepath.Join(s.dir, "sentinel.conf")
		text := fmt.Sprintf(`port %d
bind 127.0.0.1
protected-mode no
dir %s
loglevel warning
sentinel monitor %s %s %s 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, s.port, s.dir, MasterName, host, port, MasterName, o.DownAfter.Milliseconds(), MasterName, o.FailoverTimeout.Milliseconds(), MasterName)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			g.tb.Fatal(err)
		}
		s.args = []string{conf}
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			g.tb.Fatalf("redis-sentinel: %v", err)
		}
	}
	g.tb.Cleanup(s.Kill)
	return s
}

func (g *Group) sentinelMaster(s *Server) (map[string]string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Master(ctx, MasterName).Result()
}

// syncedReplicas counts the replicas the primary reports online.
func (g *Group) syncedReplicas(c *redis.Client) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return -1
	}
	n := 0
	for line := range strings.SplitSeq(info, "\n") {
		if strings.HasPrefix(line, "slave") && strings.Contains(line, "state=online") {
			n++
		}
	}
	return n
}

// MasterAddr is the primary's address according to every sentinel, or ""
// while they disagree or cannot answer (a failover in progress).
func (g *Group) MasterAddr() string {
	var addr string
	for _, s := range g.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		hp, err := c.GetMasterAddrByName(ctx, MasterName).Result()
		cancel()
		c.Close()
		if err != nil || len(hp) != 2 {
			return ""
		}
		a := net.JoinHostPort(hp[0], hp[1])
		if addr != "" && a != addr {
			return ""
		}
		addr = a
	}
	return addr
}

// Server returns the group's server at addr (the primary or a replica).
func (g *Group) Server(addr string) *Server {
	for _, s := range append([]*Server{g.Primary}, g.Replicas...) {
		if s.Addr == addr {
			return s
		}
	}
	return nil
}

// Writable reports whether the server at addr is a primary that accepts a
// write now (it has its min-replicas-to-write replicas).
func (g *Group) Writable(addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.Set(ctx, "redistest:probe", "1", time.Minute).Err() == nil
}
