package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
)

// ErrNoMedia is returned by an RTSP source whose upstream describes no media.
var ErrNoMedia = errors.New("upstream has no media")

// RTSP pulls one camera from an RTSP or RTSPS server with a gortsplib client.
// One Run is one connection; the hub reconnects by calling Run again.
type RTSP struct {
	url    *base.URL
	logURL string
	opts   Options
	// onConn, when set (tests), is told of each upstream TCP connection.
	onConn func(*bulkConn)
}

func newRTSP(raw string, u *url.URL, opts Options) (*RTSP, error) {
	bu, err := base.ParseURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrUnsupportedScheme, redactURL(u), err)
	}
	if bu.Host == "" {
		return nil, fmt.Errorf("%w (%s has no host)", ErrUnsupportedScheme, redactURL(u))
	}
	return &RTSP{url: bu, logURL: redactURL(u), opts: opts}, nil
}

// Run connects, hands the description and every RTP packet to sink, and
// returns nil when ctx is done or the error that ended the connection.
func (s *RTSP) Run(ctx context.Context, sink Sink) error {
	log := s.opts.Logger.With("url", s.logURL)
	// Losses are logged at debug level: the hub judges whether they are
	// sustained and warns once (UpstreamHealth).
	lost := &throttledLog{log: log, level: slog.LevelDebug, msg: "upstream RTP packets lost", period: 10 * time.Second}
	bad := &throttledLog{log: log, level: slog.LevelWarn, msg: "upstream packets undecodable", period: 10 * time.Second}
	health, _ := sink.(UpstreamHealth)
	var conn *bulkConn // the TCP connection, once dialled (reader goroutine only)
	dialer, listen := &net.Dialer{}, net.ListenPacket
	if ip := net.ParseIP(s.opts.LocalIP); ip != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: ip}
		listen = listenFrom(s.opts.LocalIP)
	}
	c := &gortsplib.Client{
		DialContext:       dialBulk(dialer, &conn, s.observeConn(sink)),
		ListenPacket:      listen,
		Scheme:            s.url.Scheme,
		Host:              s.url.Host,
		ReadTimeout:       s.opts.ReadTimeout,
		Protocol:          s.protocol(),
		UDPReadBufferSize: s.opts.UDPReadBuffer,
		// gortsplib's defaults print with the standard logger.
		OnTransportSwitch: func(err error) {
			log.Info("upstream transport switch", "reason", err)
			if health != nil {
				health.UpstreamTransport(gortsplib.ProtocolTCP.String()) // gortsplib switches UDP to TCP only
			}
		},
		OnPacketsLost: func(n uint64) {
			lost.add(n, nil)
			if health != nil {
				health.PacketsLost(n)
			}
		},
		OnDecodeError: func(err error) { bad.add(1, err) },
	}
	if err := c.Start(); err != nil {
		return fmt.Errorf("rtsp source %s: %w", s.logURL, err)
	}
	// Closing on cancel also aborts a DESCRIBE/SETUP/PLAY stuck on a silent
	// server. Close is idempotent, so the deferred one is harmless.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	defer c.Close()

	desc, err := s.play(c, sink, func() *bulkConn { return conn })
	if err == nil {
		proto := transportName(c)
		log.Info("upstream playing", "medias", len(desc.Medias), "transport", proto)
		if health != nil {
			health.UpstreamTransport(proto)
		}
		err = c.Wait()
	}
	if ctx.Err() != nil {
		return nil
	}
	log.Warn("upstream ended", "error", err)
	return fmt.Errorf("rtsp source %s: %w", s.logURL, err)
}

// observeConn is what dialBulk reports each new connection to: a sink that
// tells when a viewer comes (LiveNotifier) wakes that connection's gathered
// read.
func (s *RTSP) observeConn(sink Sink) func(*bulkConn) {
	ln, _ := sink.(LiveNotifier)
	if ln == nil {
		return s.onConn
	}
	return func(bc *bulkConn) {
		ln.OnLive(bc.wakeLive)
		if s.onConn != nil {
			s.onConn(bc)
		}
	}
}

// gatherAfter is how long after its first packet a connection is gathered
// even though some of its medias have sent nothing (a muted microphone).
const gatherAfter = 3 * time.Second

// play runs DESCRIBE, SETUP and PLAY and wires packets to sink.
func (s *RTSP) play(c *gortsplib.Client, sink Sink, conn func() *bulkConn) (*description.Session, error) {
	desc, _, err := c.Describe(s.url)
	if err != nil {
		return nil, err
	}
	if len(desc.Medias) == 0 {
		return nil, ErrNoMedia
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return nil, err
	}
	medias := desc.Medias
	tolerant, _ := sink.(LatencyTolerant)
	// Reads are gathered only for media interleaved on the TCP connection:
	// then the packet callback runs on the goroutine that reads it. Over
	// UDP the callbacks run on each media's listener goroutine, and the
	// TCP connection carries only RTSP requests (a camera gortsplib later
	// switches from UDP to TCP is simply not gathered).
	if transportName(c) != gortsplib.ProtocolTCP.String() {
		tolerant = nil
	}
	clocks := make([]captureClock, len(medias))
	for i, m := range medias {
		clocks[i] = newCaptureClock(m)
	}
	// Reads are gathered only once every media has sent its first packet
	// (or gatherAfter has passed): consumers place each track on the
	// shared timeline by its first packet's capture time, which a gathered
	// read would blur by its 200 ms. Only the reader goroutine touches
	// these (tolerant is nil otherwise).
	silent, first := len(medias), time.Time{}
	c.OnPacketRTPAny(func(medi *description.Media, _ format.Format, pkt *rtp.Packet) {
		// A linear scan beats a map for the handful of medias a camera has.
		for i, m := range medias {
			if m != medi {
				continue
			}
			now := time.Now()
			if tolerant != nil {
				if !clocks[i].started {
					silent--
				}
				if first.IsZero() {
					first = now
				}
				if bc := conn(); bc != nil && (silent == 0 || now.Sub(first) > gatherAfter) {
					bc.tune(tolerant.LatencyTolerant(), now)
				}
			}
			sink.WritePacketRTP(i, pkt, clocks[i].at(pkt, now))
			return
		}
	})
	if err := sink.SetDescription(desc); err != nil {
		return nil, fmt.Errorf("sink refused description: %w", err)
	}
	if _, err := c.Play(nil); err != nil {
		return nil, err
	}
	return desc, nil
}

// throttledLog turns per-packet troubles (losses, decode errors) into at most
// one warning per period carrying the count since the previous one.
type throttledLog struct {
	log    *slog.Logger
	level  slog.Level
	msg    string
	period time.Duration

	mu    sync.Mutex // guards the fields below; callbacks run on client goroutines
	last  time.Time
	count uint64
}

func (t *throttledLog) add(n uint64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.count += n
	now := time.Now()
	if now.Sub(t.last) < t.period {
		return
	}
	attrs := []any{"count", t.count, "since", t.last}
	if t.last.IsZero() {
		attrs = attrs[:2]
	}
	if err != nil {
		attrs = append(attrs, "last_error", err)
	}
	t.log.Log(context.Background(), t.level, t.msg, attrs...)
	t.last, t.count = now, 0
}

func (s *RTSP) protocol() *gortsplib.Protocol {
	var p gortsplib.Protocol
	switch s.opts.Transport {
	case "tcp":
		p = gortsplib.ProtocolTCP
	case "udp":
		p = gortsplib.ProtocolUDP
	default:
		return nil
	}
	return &p
}

func transportName(c *gortsplib.Client) string {
	if t := c.Transport(); t != nil && t.Session != nil {
		return t.Session.Protocol.String()
	}
	return ""
}

// listenFrom is net.ListenPacket on ip: gortsplib asks for ":port" (every
// address); a source with a LocalIP receives, and sends RTCP, from it.
func listenFrom(ip string) func(network, address string) (net.PacketConn, error) {
	return func(network, address string) (net.PacketConn, error) {
		if host, port, err := net.SplitHostPort(address); err == nil && host == "" {
			address = net.JoinHostPort(ip, port)
		}
		return net.ListenPacket(network, address)
	}
}
