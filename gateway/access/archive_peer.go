package access

import (
	"context"
	"crypto/hmac"
	"fmt"
	"strconv"
	"strings"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
)

// Archive peer tokens let one node read a recorded segment that another
// node holds (archive/remote.go): "cgarchive~FROM~HOLDER~CAMERA~SEGMENT~EXP~MAC",
// with MAC the relay tokens' HMAC-SHA256 under the cluster's secret of
// everything before it ('~' is in no id, so a camera id with dots is
// fine and no field can be shifted into another). The prefix scopes it: the MAC of a relay token
// does not verify as a peer token's nor the other way round, and a peer
// token is no viewer credential anywhere (Authenticate does not know it;
// only the holder's /archive/{camera}/held/ endpoint takes it). It reads
// exactly one segment of one camera, at one holder, for relayTTL. The
// viewer is authorized for that segment at the node that mints it, before
// it is minted.
const archivePeerPrefix, peerSep = "cgarchive~", "~"

// ArchivePeerToken mints a token for node from to read segment of camera
// from node holder, or "" without a cluster secret.
func (s *Service) ArchivePeerToken(from, holder, camera, segment string) string {
	if len(s.RelaySecret) == 0 {
		return ""
	}
	body := archivePeerPrefix + strings.Join([]string{from, holder, camera, segment,
		strconv.FormatInt(s.Now().Add(relayTTL).Unix(), 10)}, peerSep)
	return body + peerSep + s.relayMAC(body)
}

// AuthenticateArchivePeer checks a peer token presented to this node
// (self) for segment of camera, and returns the node that sent it. Bad
// tokens count against the client's failure budget as on every edge.
func (s *Service) AuthenticateArchivePeer(ctx context.Context, raw, self, camera, segment string) (string, error) {
	set := s.settings.Load()
	ip := session.RemoteIP(ctx)
	if err := set.failures.Check(ip); err != nil {
		return "", err
	}
	from, err := s.verifyArchivePeer(raw, self, camera, segment)
	if err != nil {
		set.failures.Fail(ip)
	}
	return from, err
}

// verifyArchivePeer checks the MAC, the expiry, and that the token names
// this holder, this camera and this segment.
func (s *Service) verifyArchivePeer(raw, self, camera, segment string) (string, error) {
	bad := fmt.Errorf("%w: bad node token", session.ErrUnauthenticated)
	if len(s.RelaySecret) == 0 {
		return "", fmt.Errorf("%w: this node takes no node tokens (cluster.secret)", session.ErrUnauthenticated)
	}
	if !strings.HasPrefix(raw, archivePeerPrefix) {
		return "", bad
	}
	i := strings.LastIndex(raw, peerSep)
	body, mac := raw[:i], raw[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.relayMAC(body))) {
		return "", bad
	}
	f := strings.Split(strings.TrimPrefix(body, archivePeerPrefix), peerSep)
	if len(f) != 5 || !authz.ValidID(f[0]) || !authz.ValidID(f[1]) || !authz.ValidID(f[2]) {
		return "", bad
	}
	exp, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return "", bad
	}
	if f[1] != self || f[2] != camera || f[3] != segment {
		return "", fmt.Errorf("%w: the node token is for another segment or node", session.ErrUnauthenticated)
	}
	if s.Now().Unix() > exp {
		return "", fmt.Errorf("%w: node token expired", session.ErrUnauthenticated)
	}
	return f[0], nil
}
