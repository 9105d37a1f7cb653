package access

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
)

// Relay tokens let one node pull a camera from the node that owns it
// (gateway/cluster): "cgrelay~NODE~HOST~CAMERA~EXP~MAC" with MAC an
// HMAC-SHA256, under the cluster's shared secret, of everything before it
// ('~' is in no id and no address, so no field can be shifted into
// another). HOST is the host of the address NODE advertises in the cluster
// membership. A relay carries media only: it is admitted to the full
// variant of exactly that camera, without a decision or a session limit —
// the viewers are authorized, and re-checked, at the node they are
// connected to.
//
// The token is bound to its node: the owner admits it only from that
// node's advertised address, as the membership (Redis) announces it now,
// so a token seen on the wire and replayed from elsewhere within its
// minute is refused as any bad credential is (401, counted against the
// client's failure budget). The admitted session is re-checked every
// RelayRecheck, like a decision at its valid_until: it ends once the node
// is no longer a live member, or advertises another address.
const relayPrefix, relaySep = "cgrelay~", "~"

// relayTTL is how long a minted relay token admits.
const relayTTL = time.Minute

// relayLookupTimeout bounds one membership read.
const relayLookupTimeout = 2 * time.Second

// RelayPeers is what access needs from the cluster to bind relay tokens
// to their node.
type RelayPeers interface {
	// PeerHost returns the host of the address node announces in the
	// cluster membership, and false when it is not a live member.
	PeerHost(ctx context.Context, node string) (host string, live bool, err error)
}

// errNotMember: the relay token's node is not (or no longer) a live
// member at the presenting address.
var errNotMember = errors.New("the relay token's node is not a live cluster member at this address")

// IsRelayToken reports whether raw has a relay token's form.
func IsRelayToken(raw string) bool { return strings.HasPrefix(raw, relayPrefix) }

// RelayToken mints a token for node, which advertises host, to pull
// camera from the owner, or "" when this node has no relay secret.
func (s *Service) RelayToken(node, host, camera string) string {
	if len(s.RelaySecret) == 0 {
		return ""
	}
	body := relayPrefix + strings.Join([]string{node, host, camera, strconv.FormatInt(s.Now().Add(relayTTL).Unix(), 10)}, relaySep)
	return body + relaySep + s.relayMAC(body)
}

func (s *Service) relayMAC(body string) string {
	m := hmac.New(sha256.New, s.RelaySecret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifyRelay checks a relay token's MAC, its expiry, and that its ids are
// ids and its host a host; it returns the principal and the host.
func (s *Service) verifyRelay(raw string) (Principal, string, error) {
	bad := fmt.Errorf("%w: bad relay token", session.ErrUnauthenticated)
	if len(s.RelaySecret) == 0 {
		return Principal{}, "", fmt.Errorf("%w: this node takes no relay tokens (cluster.secret)", session.ErrUnauthenticated)
	}
	if !IsRelayToken(raw) {
		return Principal{}, "", bad
	}
	i := strings.LastIndex(raw, relaySep)
	body, mac := raw[:i], raw[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.relayMAC(body))) {
		return Principal{}, "", bad
	}
	f := strings.Split(strings.TrimPrefix(body, relayPrefix), relaySep)
	if len(f) != 4 || !authz.ValidID(f[0]) || f[1] == "" || !authz.ValidID(f[2]) {
		return Principal{}, "", bad
	}
	exp, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return Principal{}, "", bad
	}
	if s.Now().Unix() > exp {
		return Principal{}, "", fmt.Errorf("%w: relay token expired", session.ErrUnauthenticated)
	}
	return Principal{Kind: KindRelay, ID: f[0], Device: f[2]}, f[1], nil
}

// authenticateRelay verifies a relay token presented from ip: its node
// must be a live member now, advertising the token's host, and ip must be
// that host (a host name resolves to it). A replay from elsewhere is
// ErrUnauthenticated; a membership that cannot be read, ErrUnavailable.
func (s *Service) authenticateRelay(ctx context.Context, raw, ip string) (Principal, error) {
	p, host, err := s.verifyRelay(raw)
	if err != nil {
		return Principal{}, err
	}
	if err := s.relayBound(ctx, p.ID, host, ip); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// relayBound checks that node is a live member advertising host (when
// host is not "") and that ip is an address of the host it advertises.
func (s *Service) relayBound(ctx context.Context, node, host, ip string) error {
	if s.Peers == nil {
		return fmt.Errorf("%w: this node cannot check relay tokens (no cluster membership)", session.ErrUnauthenticated)
	}
	ctx, cancel := context.WithTimeout(ctx, relayLookupTimeout)
	defer cancel()
	adv, live, err := s.Peers.PeerHost(ctx, node)
	if err != nil {
		return fmt.Errorf("%w: cluster membership of %s: %w", session.ErrUnavailable, node, err)
	}
	if !live || (host != "" && adv != host) || !hostIs(ctx, adv, ip) {
		return fmt.Errorf("%w: %w", session.ErrUnauthenticated, errNotMember)
	}
	return nil
}

// hostIs reports whether ip is host: the same address, or one host
// resolves to.
func hostIs(ctx context.Context, host, ip string) bool {
	want := net.ParseIP(ip)
	if want == nil {
		return false
	}
	if h := net.ParseIP(host); h != nil {
		return h.Equal(want)
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.Equal(want) {
			return true
		}
	}
	return false
}

// recheckRelay re-checks an open relay session: its camera is still a
// camera, and its node still a live member advertising the session's
// remote address. It is due again after RelayRecheck.
func (s *Service) recheckRelay(ss *session.Session) session.Verdict {
	if dev, ok := s.Authz.Device(ss.Camera); !ok || dev.Kind != "camera" {
		return session.Verdict{Reason: "relay: unknown camera " + ss.Camera, End: session.EndRevoked}
	}
	ip := ss.Remote
	if h, _, err := net.SplitHostPort(ss.Remote); err == nil {
		ip = h
	}
	if err := s.relayBound(context.Background(), ss.Relay, "", ip); err != nil {
		end := session.EndRevoked
		if errors.Is(err, session.ErrUnavailable) {
			end = session.EndUnavailable
		}
		return session.Verdict{Reason: "relay to node " + ss.Relay + ": " + err.Error(), End: end}
	}
	return session.Verdict{Allowed: true, ValidUntil: s.Now().Add(s.RelayRecheck)}
}
