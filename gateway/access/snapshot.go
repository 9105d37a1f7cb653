package access

import (
	"context"
	"time"

	"github.com/camgate/camgate/gateway/session"
	"github.com/camgate/camgate/links"
)

// AuthorizeSnapshot decides GET /api/v1/cameras/{camera}/snapshot.jpg of
// the live picture: the same authentication, camera check and `live`
// decision as a live session's admission (so a refusal has the status it
// has on RTSP, HLS and WHEP: 401, 403, 404, 429 for a full link, 503 when
// the store is unreachable), without the session limits: a snapshot opens
// no session. A snapshot from the recording is decided by Archive with
// action `archive` and its footage time, as a segment is.
func (s *Service) AuthorizeSnapshot(ctx context.Context, raw, camera string) (Principal, error) {
	t := session.Ticket{Camera: camera, Token: fingerprint(raw)}
	p, err := s.Authenticate(ctx, raw)
	if err != nil {
		if links.IsLinkToken(raw) {
			s.Counters.LinkVerification(OutcomeOf(err))
		}
		return p, err
	}
	err = s.admitPrincipal(ctx, p, &t)
	if p.Kind == KindLink {
		s.Counters.LinkVerification(OutcomeOf(err))
	}
	return p, err
}

// AuthorizeArchiveSnapshot decides a snapshot of the recording at footage:
// `archive` for that footage time, with every rule a segment request has
// (grant windows, footage_within, a link's footage window), so a refusal
// has the archive's status. The returned allow decides, at the same
// request instant, the recording time of the keyframe actually shown,
// which may lie before at.
func (s *Service) AuthorizeArchiveSnapshot(ctx context.Context, raw, camera string, at time.Time) (allow func(footage time.Time) error, err error) {
	gr, err := Archive{S: s}.Begin(ctx, raw, camera, "archive")
	if err != nil {
		return nil, err
	}
	if _, err := gr.Allow(at); err != nil {
		return nil, err
	}
	return func(footage time.Time) error {
		_, err := gr.Allow(footage)
		return err
	}, nil
}
