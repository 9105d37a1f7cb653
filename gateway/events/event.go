// Package events is the camera notification feed of GET /api/v1/events and
// GET /api/v1/events/stream (Server-Sent Events): alarms, arm and disarm,
// stored photos and clips, share offers and PTZ take-overs. Events are kept
// in a Store (an embedded bbolt file, or a Redis stream that every node of
// a cluster reads, so several nodes see one feed) for a retention, and each
// is delivered only to a principal that may see it at that moment: the
// decision is asked of the enforcement point (gateway/access) per event and
// per principal at delivery time, so a viewer who loses `notices` on a
// device receives none of its events from the next one on.
package events

import (
	"errors"
	"fmt"
	"time"

	"github.com/camgate/camgate/internal/httpjson"
)

// Kind is what happened.
type Kind string

// Event kinds.
const (
	KindAlarm        Kind = "alarm"         // POST /devices/{id}/alarm
	KindArmed        Kind = "armed"         // POST /sites/{id}/arm, one per device of the site
	KindDisarmed     Kind = "disarmed"      // POST /sites/{id}/disarm, one per device
	KindObjectStored Kind = "object_stored" // a device stored a photo or an audio clip
	KindShareOffer   Kind = "share_offer"   // a camera was shared with the recipient
	KindPTZTakeover  Kind = "ptz_takeover"  // a higher-priority holder took a camera's PTZ over
)

// Event is one notification. It always concerns one device; a share offer
// is addressed to its Recipient alone.
type Event struct {
	// ID orders events; it is the cursor of ?after= and of SSE's
	// Last-Event-ID. Assigned by the store.
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Kind   Kind      `json:"kind"`
	Device string    `json:"device"`
	Site   string    `json:"site,omitempty"`
	// Recipient, when set, is the only subject the event is for (a share
	// offer: the recipient has no `notices` on the device before accepting).
	Recipient string `json:"recipient,omitempty"`
	// By names who caused it, as the audit log does ("admin:ops",
	// "subject:alice"), when known.
	By string `json:"by,omitempty"`
	// Data holds the kind's details: object id and kind, share id and
	// actions, alarm_until, the PTZ holders.
	Data map[string]string `json:"data,omitempty"`
}

// ErrBadCursor is a malformed ?after= or Last-Event-ID (400).
var ErrBadCursor = fmt.Errorf("%w: after: not an event id of this feed", httpjson.ErrBadRequest)

// ErrClosed is returned once the feed is closed.
var ErrClosed = errors.New("events: closed")
