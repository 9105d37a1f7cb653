package access

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/camgate/camgate/authz"
	"github.com/camgate/camgate/gateway/session"
)

// Relay tokens let one node pull a camera from the node that owns it
// (gateway/cluster): "cgrelay.NODE.CAMERA.EXP.MAC" with MAC an HMAC-SHA256,
// under the cluster's shared secret, of everything before it. A relay
// carries media only: it is admitted to the full variant of exactly that
// camera, without a decision, a session limit or a re-check — the viewer
// is authorized, and re-checked, at the node it is connected to. The token
// is checked at admission; a relay session then lives while the camera
// does.
const relayPrefix = "cgrelay."

// relayTTL is how long a minted relay token admits.
const relayTTL = time.Minute

// IsRelayToken reports whether raw has a relay token's form.
func IsRelayToken(raw string) bool { return strings.HasPrefix(raw, relayPrefix) }

// RelayToken mints a token for node to pull camera from the owner, or ""
// when this node has no relay secret.
func (s *Service) RelayToken(node, camera string) string {
	if len(s.RelaySecret) == 0 {
		return ""
	}
	body := relayPrefix + node + "." + camera + "." + strconv.FormatInt(s.Now().Add(relayTTL).Unix(), 10)
	return body + "." + s.relayMAC(body)
}

func (s *Service) relayMAC(body string) string {
	m := hmac.New(sha256.New, s.RelaySecret)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifyRelay checks a relay token: its MAC, its expiry, and that ids are
// ids (a camera id holds no dot, so the fields cannot be shifted).
func (s *Service) verifyRelay(raw string) (Principal, error) {
	bad := fmt.Errorf("%w: bad relay token", session.ErrUnauthenticated)
	if len(s.RelaySecret) == 0 {
		return Principal{}, fmt.Errorf("%w: this node takes no relay tokens (cluster.secret)", session.ErrUnauthenticated)
	}
	i := strings.LastIndexByte(raw, '.')
	if i < 0 {
		return Principal{}, bad
	}
	body, mac := raw[:i], raw[i+1:]
	if !hmac.Equal([]byte(mac), []byte(s.relayMAC(body))) {
		return Principal{}, bad
	}
	f := strings.Split(strings.TrimPrefix(body, relayPrefix), ".")
	if len(f) != 3 || !authz.ValidID(f[0]) || !authz.ValidID(f[1]) {
		return Principal{}, bad
	}
	exp, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return Principal{}, bad
	}
	if s.Now().Unix() > exp {
		return Principal{}, fmt.Errorf("%w: relay token expired", session.ErrUnauthenticated)
	}
	return Principal{Kind: KindRelay, ID: f[0], Device: f[1]}, nil
}
