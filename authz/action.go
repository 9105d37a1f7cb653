// Package authz is camgate's permission model: organizations, a site tree,
// devices, subjects, groups, roles, grants, shares, temporary access and
// admins, persisted through a Store, held in memory with indexes, evaluated by
// one evaluator and served from an in-process decision cache that every
// committed write invalidates precisely. It is a library usable on its own: it
// imports nothing of the gateway, the archive or the links packages, and
// nothing of HTTP or JSON requests. Every operation is a typed method
// taking a Caller that decides who may do what: writes (PutDevice,
// PutGrant, Arm, BulkAccess, AnswerShare, DecideRequest, Delete…; see
// typed_api.go) and reads (Get, List, TemporaryGrants, Audit, CheckAs).
// The JSON transport of /api/v1 is the sub-package jsonapi, which routes
// paths to these methods and decides no rule of its own.
package authz

import (
	"fmt"
	"math/bits"
	"strings"
)

// Action is a set of permissions, one bit per action, so that a cache entry
// can answer every action of a (subject, device) pair at once.
type Action uint32

// The actions of DESIGN §4. The first five are enforced by the gateway on the
// media path; the rest are modelled and enforced by the API.
const (
	ActionLive Action = 1 << iota
	ActionArchive
	ActionDownload
	ActionSound
	ActionPTZ
	ActionShare
	ActionNotices
	ActionSettings
	ActionPhotoOnDemand
	ActionPhotoView
	ActionAudioPlayback
	ActionAudioDownload
	ActionManagePrivacy

	numActions = iota
)

// ActionAll is every action.
const ActionAll Action = 1<<numActions - 1

// Action groups the rules refer to.
const (
	// actionsVideo is what a privacy manager has on every video device (rule 4).
	actionsVideo = ActionLive | ActionArchive | ActionDownload | ActionSound | ActionPTZ |
		ActionShare | ActionNotices | ActionSettings | ActionManagePrivacy
	// actionsPermanentOnly may only be granted without a time limit (rule 10, seed 000:
	// "Permission to take and view photos is granted only on a permanent basis",
	// "Permission to play back and download recorded audio clips is granted only on a
	// permanent basis").
	actionsPermanentOnly = ActionPhotoOnDemand | ActionPhotoView | ActionAudioPlayback | ActionAudioDownload
	// actionsShare are the levels a share may carry (seed 004).
	actionsShare = ActionLive | ActionArchive | ActionNotices | ActionDownload
	// actionsTemporary is what automatic temporary access gives an installer or a
	// company to configure a newly added camera.
	actionsTemporary = ActionLive | ActionSound | ActionPTZ | ActionSettings
)

func actionName(i int) string {
	switch Action(1) << i {
	case ActionLive:
		return "live"
	case ActionArchive:
		return "archive"
	case ActionDownload:
		return "download"
	case ActionSound:
		return "sound"
	case ActionPTZ:
		return "ptz"
	case ActionShare:
		return "share"
	case ActionNotices:
		return "notices"
	case ActionSettings:
		return "settings"
	case ActionPhotoOnDemand:
		return "photo_on_demand"
	case ActionPhotoView:
		return "photo_view"
	case ActionAudioPlayback:
		return "audio_playback"
	case ActionAudioDownload:
		return "audio_download"
	case ActionManagePrivacy:
		return "manage_privacy"
	}
	return ""
}

// ParseAction parses one action name ("live", "photo_on_demand", ...).
func ParseAction(s string) (Action, error) {
	for i := range numActions {
		if actionName(i) == s {
			return Action(1) << i, nil
		}
	}
	return 0, fmt.Errorf("unknown action %q", s)
}

// ParseActions parses a list of action names into a set.
func ParseActions(names []string) (Action, error) {
	var a Action
	for _, n := range names {
		x, err := ParseAction(n)
		if err != nil {
			return 0, err
		}
		a |= x
	}
	return a, nil
}

// Names lists the actions of the set in declaration order.
func (a Action) Names() []string {
	out := make([]string, 0, bits.OnesCount32(uint32(a)))
	for i := range numActions {
		if a&(1<<i) != 0 {
			out = append(out, actionName(i))
		}
	}
	return out
}

// String joins the action names with "+" ("live+sound"); the empty set is "none".
func (a Action) String() string {
	if a == 0 {
		return "none"
	}
	if bits.OnesCount32(uint32(a)) == 1 {
		return actionName(bits.TrailingZeros32(uint32(a)))
	}
	return strings.Join(a.Names(), "+")
}

// index returns the bit position of a single action.
func (a Action) index() int { return bits.TrailingZeros32(uint32(a)) }
