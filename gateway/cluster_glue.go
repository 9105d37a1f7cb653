package gateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/cluster"
	"github.com/camgate/camgate/gateway/source"
	"github.com/camgate/camgate/gateway/stream"
)

// With cluster.enabled, each camera has one owning node (gateway/cluster):
// only the owner pulls it from the camera and records it; another node's
// stream hub pulls it from the owner's RTSP server with a relay token
// (gateway/access relay.go), so the camera sees one connection for the
// whole cluster. Viewers are authorized, limited and re-checked at the node
// they are connected to; the relay carries media only, from this node's
// advertised address, which is where the owner admits its token from
// (clusterPeers answers the owner's membership questions). When the owner
// changes, the hubs that pull the camera reconnect to the new one and their
// viewers stay connected through the blip, as through any upstream blip.

// errNoOwner: placement has not given the camera an owner yet; the hub
// retries.
var errNoOwner = errors.New("cluster: the camera has no owner yet")

// startCluster joins the cluster once the RTSP server listens (its address
// is what the other nodes pull from), then starts the recordings this node
// owns.
func (g *Gateway) startCluster() error {
	cc := g.Config.Cluster
	if !cc.Enabled {
		return nil
	}
	id := cc.NodeID
	if id == "" {
		id = defaultNodeID(g.rtsp.Addr())
	}
	addr := cc.Advertise
	if addr == "" {
		addr = advertiseAddr(g.rtsp.Addr())
	}
	n := &cluster.Node{Client: g.redis.client, ID: id, Addr: addr, HTTP: g.advertiseHTTP(), TTL: time.Duration(cc.LeaseTTL),
		OnAcquire: func(camera string, _ cluster.Lease) {
			if g.moves.end(camera) { // moved here: the stream pulls the camera already
				g.syncRecorders()
				return
			}
			g.ownerChanged(camera)
		},
		OnLose: func(camera string) {
			g.moves.end(camera)
			g.ownerChanged(camera)
		},
		OnPrepare: g.prepareMove,
		OnMove:    func(camera string, _ cluster.Lease) { g.hub.Reconnect(camera) },
		Logger:    g.Logger.With("component", "cluster")}
	if err := n.Initialize(); err != nil {
		return err
	}
	// Closed before the hub (closers run newest first): the leases are
	// given back while the streams still run, so the cameras move at once;
	// the moves into this node end with it.
	g.closers = append(g.closers, g.moves.wg.Wait, n.Close)
	// Before any recording starts (it needs g.cluster): every segment
	// recorded here is in the shared index.
	if err := g.joinArchive(n); err != nil {
		return err
	}
	g.cluster.Store(n)
	g.syncRecorders()
	return nil
}

// defaultNodeID is the host name and the RTSP port, as an id.
func defaultNodeID(rtspAddr net.Addr) string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, r := range strings.ToLower(host) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
	}
	_, port, _ := net.SplitHostPort(rtspAddr.String())
	if b.Len() == 0 {
		b.WriteString("node")
	}
	return b.String() + "-" + port
}

// advertiseAddr is the RTSP listener's address, 127.0.0.1 for a wildcard.
func advertiseAddr(rtspAddr net.Addr) string {
	host, port, _ := net.SplitHostPort(rtspAddr.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// advertiseHTTP is the base URL the other nodes read this node's archive
// segments from.
func (g *Gateway) advertiseHTTP() string {
	if a := g.Config.Cluster.AdvertiseHTTP; a != "" {
		return strings.TrimSuffix(a, "/")
	}
	scheme := "http://"
	if g.tlsConfig() != nil {
		scheme = "https://"
	}
	return scheme + advertiseAddr(g.http.Addr())
}

// ownerChanged runs when this node takes or loses a camera: its stream
// reconnects (to the camera, or to the new owner) with its viewers kept,
// and its recording starts or stops.
func (g *Gateway) ownerChanged(camera string) {
	g.hub.Reconnect(camera)
	g.syncRecorders()
}

// sourceFor resolves a camera to its upstream: the camera itself, or with a
// cluster, the camera when this node owns it and the owner's RTSP server
// otherwise.
func (g *Gateway) sourceFor(camera string) (source.Source, error) {
	dev, ok := g.authz.Device(camera)
	if !ok {
		return nil, stream.ErrUnknownCamera
	}
	opts := source.Options{Logger: g.Logger.With("camera", camera), Transport: dev.Transport,
		UDPReadBuffer: cmp.Or(dev.UDPReadBuffer, g.Config.RTSP.UpstreamUDPReadBuffer)}
	if !g.Config.Cluster.Enabled {
		return source.New(dev.Source, opts)
	}
	n := g.cluster.Load()
	if n == nil {
		return nil, fmt.Errorf("%w (joining the cluster)", errNoOwner)
	}
	n.Want(camera)
	url, err := g.relayURL(n, camera, dev)
	if err != nil {
		return nil, err
	}
	if url == "" {
		return source.New(dev.Source, opts)
	}
	// The camera's transport is about its network, not this cluster's;
	// the relay leaves from the address this node advertises, the one the
	// owner admits its token from.
	opts.Logger, opts.Transport = opts.Logger.With("relay", strings.SplitN(url, "?", 2)[0]), ""
	if host := hostOf(n.Addr); net.ParseIP(host) != nil {
		opts.LocalIP = host
	}
	return source.New(url, opts)
}

// hostOf is the host of a host:port address.
func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

// clusterPeers answers access's membership questions (relay tokens are
// bound to their node's advertised address) from this node's cluster view.
type clusterPeers struct{ g *Gateway }

// PeerHost implements access.RelayPeers.
func (p clusterPeers) PeerHost(ctx context.Context, node string) (string, bool, error) {
	n := p.g.cluster.Load()
	if n == nil {
		return "", false, nil // not joined yet: no relay is admitted
	}
	m, live, err := n.Member(ctx, node)
	if err != nil || !live {
		return "", false, err
	}
	return hostOf(m.Addr), true, nil
}

// relayURL is where a non-owner pulls camera from ("" when this node owns
// it, or is moving it here). It waits for placement up to one lease TTL.
func (g *Gateway) relayURL(n *cluster.Node, camera string, _ authz.Device) (string, error) {
	ttl := time.Duration(g.Config.Cluster.LeaseTTL)
	ctx, cancel := context.WithTimeout(context.Background(), ttl)
	defer cancel()
	for {
		if _, ok := n.Owns(camera); ok || n.Moving(camera) {
			return "", nil
		}
		l, ok, err := n.Owner(ctx, camera)
		if err == nil && ok && l.Node != n.ID {
			n.Follow(camera, l)
			return "rtsp://" + l.Addr + "/" + camera + "?token=" + url.QueryEscape(g.access.RelayToken(n.ID, hostOf(n.Addr), camera)), nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return "", err
			}
			return "", errNoOwner
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// upstreamChanged is the hub's upstream state hook: metrics, and with a
// cluster, a camera this node stops pulling is no longer wanted here
// unless it records it.
func (g *Gateway) upstreamChanged(camera, state string) {
	g.metrics.upstream(camera, state)
	g.moves.upstream(camera, state)
	if state != "closed" {
		return
	}
	if n := g.cluster.Load(); n != nil {
		if d, ok := g.authz.Device(camera); !ok || !d.Record {
			n.Unwant(camera)
		}
	}
}
