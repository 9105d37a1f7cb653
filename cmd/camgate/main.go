// Command camgate runs the camgate media gateway.
//
//	camgate serve [--config camgate.yml]   run a node
//	camgate demo                           run with a demo camera and print how to watch it
//	camgate token --sub alice --ttl 1h     mint a development viewer token (HS256)
//	camgate version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/camgate/camgate/gateway"
	"github.com/camgate/camgate/gateway/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "camgate:", err)
		os.Exit(1)
	}
}

const usage = `camgate — media streaming gateway with inline authorization

Usage:
  camgate serve   [--config FILE]            run a gateway node
  camgate demo    [--config FILE]            run with a demo camera; prints URLs and tokens
  camgate token   --sub SUBJECT [--ttl 1h] [--config FILE]
                                             mint a development viewer token (HS256 secret)
  camgate healthcheck [--config FILE]       exit 0 when this host's node answers /healthz
  camgate version                            print the version

Every config key can be set by an environment variable CAMGATE_SECTION_KEY,
e.g. CAMGATE_HTTP_LISTEN=:9090. See README.md.
`

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a subcommand is required")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "demo":
		return demo(args[1:], stdout, stderr)
	case "token":
		return mintToken(args[1:], stdout)
	case "healthcheck":
		return healthcheck(args[1:])
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "camgate", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

// loadConfig reads the optional file and the environment.
func loadConfig(fs *flag.FlagSet, args []string) (config.Config, error) {
	cfg, _, err := loadConfigPath(fs, args)
	return cfg, err
}

// loadConfigPath is loadConfig that also returns the file's path, for reloads.
func loadConfigPath(fs *flag.FlagSet, args []string) (config.Config, string, error) {
	path := fs.String("config", "", "YAML configuration file (optional)")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, "", err
	}
	cfg, err := config.Load(*path, os.Environ())
	return cfg, *path, err
}

// newLogger builds the log on a LevelVar, which the gateway sets from
// log_level at start and on every reload.
func newLogger(cfg config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var log *slog.Logger
	if cfg.LogFormat == "json" {
		log = slog.New(slog.NewJSONHandler(w, opts))
	} else {
		log = slog.New(slog.NewTextHandler(w, opts))
	}
	// go-redis prints its own connection errors; route them to our log at
	// debug level (outages are reported once, by the store and /readyz).
	redis.SetLogger(redisLogger{log.With("component", "go-redis")})
	return log, level
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, fmt.Sprintf(format, v...))
}

func serve(args []string, stderr io.Writer) error {
	cfg, path, err := loadConfigPath(flag.NewFlagSet("serve", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	log, level := newLogger(cfg, stderr)
	benchProfiling()
	g := &gateway.Gateway{Config: cfg, Logger: log, LogLevel: level, Version: version}
	if err := g.Initialize(); err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for {
		select {
		case <-hup:
			reload(g, path, log)
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down")
	g.Close()
	return nil
}

// reload re-reads the configuration on SIGHUP and applies what can change
// without a restart (the gateway logs the keys that need one); a bad file
// changes nothing.
func reload(g *gateway.Gateway, path string, log *slog.Logger) {
	cfg, err := config.Load(path, os.Environ())
	if err == nil {
		if _, err = g.Reload(cfg); err == nil {
			return
		}
	}
	log.Error("configuration not reloaded", "error", err)
}

// healthcheck asks the local node's /healthz (for container health checks,
// where no curl is available).
func healthcheck(args []string) error {
	cfg, err := loadConfig(flag.NewFlagSet("healthcheck", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	_, port, err := net.SplitHostPort(cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen: %w", err)
	}
	c := &http.Client{Timeout: 2 * time.Second}
	res, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", res.Status)
	}
	return nil
}

// waitForSignal blocks until SIGINT or SIGTERM.
func waitForSignal() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
