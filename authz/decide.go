package authz

import "time"

// Decision is the answer for one action. ValidUntil is the next instant the
// answer could change by time alone (zero: no time limit); anything else that
// changes it arrives as an Invalidation.
type Decision struct {
	Allowed    bool
	Reason     string
	ValidUntil time.Time
}

func nsTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func minNS(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// termHolds reports whether t's condition holds for action a at now and,
// for an alarm window or a share owner's rights, when that could end; why is
// the reason when it does not hold.
func termHolds(t *term, a Action, now, footage int64) (ok bool, end int64, why string) {
	switch t.cond {
	case condArmed:
		return t.armed.Load(), 0, t.condReason
	case condAfterAlarm:
		until := t.alarm.Load()
		return now < until, until, t.condReason
	case condOwner:
		// The owner's own decision, live conditions and footage limits
		// included: a share is worth at most what its owner may do now.
		okShare, _, shareEnd := t.owner.decide(ActionShare, now, -1)
		if !okShare {
			return false, 0, t.lostReason
		}
		okA, _, aEnd := t.owner.decide(a, now, footage)
		return okA, minNS(shareEnd, aEnd), t.condReason
	}
	return true, 0, ""
}

// decide answers one single action from a current entry. It does not
// allocate: every reason string was built when the entry was computed.
// footage < 0 means "no footage time".
func (e *entry) decide(a Action, now, footage int64) (allowed bool, reason string, validUntil int64) {
	i := a.index()
	edge := e.edges[i]
	if a&e.blocked != 0 {
		return false, e.blockedWhy, edge
	}
	if j := e.static[i]; j >= 0 {
		return true, e.terms[j].reason, edge
	}
	best := -1
	var bestEnd int64 = -1 // when the best allowing term's condition lapses; 0 = not by time
	failed := ""
	for i := range e.terms {
		t := &e.terms[i]
		if t.actions&a == 0 {
			continue
		}
		ok, end, why := termHolds(t, a, now, footage)
		if ok && footage >= 0 && t.footage > 0 && a&(ActionArchive|ActionDownload) != 0 &&
			footage < now-int64(t.footage) {
			ok = false
			if failed == "" {
				failed = t.footReason
			}
			continue
		}
		if !ok {
			if failed == "" {
				failed = why
			}
			continue
		}
		if best < 0 || (bestEnd != 0 && (end == 0 || end > bestEnd)) {
			best, bestEnd = i, end
		}
	}
	if best >= 0 {
		return true, e.terms[best].reason, minNS(edge, bestEnd)
	}
	if failed != "" {
		return false, failed, edge
	}
	if e.denyWhy != "" {
		return false, e.denyWhy, edge
	}
	return false, defaultDenyReason(a), edge
}

// decision applies rule 12 on top of decide: sound only adds to live or archive.
func (e *entry) decision(a Action, now, footage int64) Decision {
	ok, why, vu := e.decide(a, now, footage)
	if ok && a == ActionSound {
		lok, _, lvu := e.decide(ActionLive, now, -1)
		aok, _, avu := e.decide(ActionArchive, now, footage)
		switch {
		case lok:
			vu = minNS(vu, lvu)
		case aok:
			vu = minNS(vu, avu)
		default:
			ok, why = false, "sound_needs_view: sound only adds to live or archive (rule 12)"
		}
	}
	return Decision{Allowed: ok, Reason: why, ValidUntil: nsTime(vu)}
}

func defaultDenyReason(a Action) string {
	switch a {
	case ActionLive:
		return "default_deny: no grant, role, share or privacy-manager rule gives live"
	case ActionArchive:
		return "default_deny: no grant, role, share or privacy-manager rule gives archive"
	case ActionDownload:
		return "default_deny: no grant, role, share or privacy-manager rule gives download"
	case ActionSound:
		return "default_deny: no grant, role, share or privacy-manager rule gives sound"
	case ActionPTZ:
		return "default_deny: no grant, role, share or privacy-manager rule gives ptz"
	case ActionShare:
		return "default_deny: no grant, role, share or privacy-manager rule gives share"
	case ActionNotices:
		return "default_deny: no grant, role, share or privacy-manager rule gives notices"
	case ActionSettings:
		return "default_deny: no grant, role, share or privacy-manager rule gives settings"
	case ActionPhotoOnDemand:
		return "default_deny: no grant gives photo_on_demand"
	case ActionPhotoView:
		return "default_deny: no grant gives photo_view"
	case ActionAudioPlayback:
		return "default_deny: no grant gives audio_playback"
	case ActionAudioDownload:
		return "default_deny: no grant gives audio_download"
	case ActionManagePrivacy:
		return "default_deny: only privacy managers have manage_privacy"
	}
	return "default_deny: not a single known action"
}
