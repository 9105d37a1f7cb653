package source

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"
)

// DemoURL is the source URL of the embedded demo clip.
const DemoURL = "builtin:demo"

// Named errors callers can branch on with errors.Is.
var (
	// ErrUnsupportedScheme is returned by New for a URL that is neither
	// rtsp://, rtsps:// nor builtin:demo.
	ErrUnsupportedScheme = errors.New("unsupported source URL: accepted schemes are rtsp://, rtsps:// and builtin:demo")
	// ErrBadOption is returned by New for an invalid Options field.
	ErrBadOption = errors.New("invalid source option")
)

// Options configure a Source. The zero value is usable.
type Options struct {
	// Logger receives connection-level events (never one line per packet).
	// nil discards.
	Logger *slog.Logger
	// ReadTimeout bounds every RTSP read (and so detects a silent upstream).
	// It defaults to 10s.
	ReadTimeout time.Duration
	// Transport of the RTSP media: "" or "auto" (UDP first, then TCP when
	// no UDP packet arrives), "tcp" or "udp".
	Transport string
	// UDPReadBuffer is the size in bytes of the socket receive buffer of
	// RTP over UDP; 0 leaves the operating system's default (Linux:
	// net.core.rmem_default, 208 KiB), which a camera of several Mbit/s
	// overflows at every keyframe. Linux caps it at net.core.rmem_max:
	// asking for more fails the connection with a message saying so.
	UDPReadBuffer int
	// LocalIP, when set, is the local address RTSP connections (and their
	// RTP/RTCP over UDP) are made from: a cluster node pulls from another
	// from the address it advertises, which is what the owner admits its
	// relay token from. "" lets the operating system choose.
	LocalIP string
	// Speed multiplies the demo clip's playback rate; tests use it to cover
	// seconds of clip time quickly. RTP timestamps are unaffected. It
	// defaults to 1 and is ignored by RTSP sources.
	Speed float64
}

func (o *Options) setDefaults() error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadTimeout == 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.ReadTimeout < 0 {
		return fmt.Errorf("%w: ReadTimeout must be positive, got %v", ErrBadOption, o.ReadTimeout)
	}
	switch o.Transport {
	case "", "auto", "tcp", "udp":
	default:
		return fmt.Errorf("%w: Transport must be \"auto\", \"tcp\" or \"udp\", got %q", ErrBadOption, o.Transport)
	}
	if o.UDPReadBuffer < 0 {
		return fmt.Errorf("%w: UDPReadBuffer must not be negative, got %d", ErrBadOption, o.UDPReadBuffer)
	}
	if o.LocalIP != "" && net.ParseIP(o.LocalIP) == nil {
		return fmt.Errorf("%w: LocalIP must be an IP address, got %q", ErrBadOption, o.LocalIP)
	}
	if o.Speed == 0 {
		o.Speed = 1
	}
	if o.Speed < 0 {
		return fmt.Errorf("%w: Speed must be positive, got %v", ErrBadOption, o.Speed)
	}
	return nil
}

// New returns the Source for rawURL: rtsp:// and rtsps:// URLs pull from an
// RTSP server (credentials in the URL are used for authentication and never
// logged), builtin:demo plays the embedded clip in a loop.
func New(rawURL string, opts Options) (Source, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	// Explicit nils: a typed nil pointer in the Source interface is not nil.
	if rawURL == DemoURL {
		d, err := newDemo(opts)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse echoes the input, which may hold a password.
		return nil, fmt.Errorf("%w (the URL does not parse)", ErrUnsupportedScheme)
	}
	switch strings.ToLower(u.Scheme) {
	case "rtsp", "rtsps":
		r, err := newRTSP(rawURL, u, opts)
		if err != nil {
			return nil, err
		}
		return r, nil
	default:
		return nil, fmt.Errorf("%w (got %q)", ErrUnsupportedScheme, u.Scheme)
	}
}

// redactURL returns u for logs: user and password replaced, and so are
// query parameters that commonly carry secrets (camgate's own ?token= too).
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("xxxxx")
	}
	if c.RawQuery != "" {
		q := c.Query()
		for _, k := range []string{"token", "password", "pass", "pwd"} {
			if q.Has(k) {
				q.Set(k, "xxxxx")
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}
