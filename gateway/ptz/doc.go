// Package ptz moves cameras over ONVIF on behalf of viewers, one controller at
// a time.
//
// A Controller turns a validated Command into an ONVIF PTZ call (SOAP 1.2 over
// HTTP, WS-Security UsernameToken with a password digest). Before anything is
// sent, the caller must hold the camera's lease: a short lock that renews with
// each command and lapses after LeaseTTL of silence, so an operator who walks
// away frees the camera without doing anything. A holder of higher priority
// (by default privacy manager > company > installer > user) takes the lease
// over; anyone else gets an *ErrLeaseHeld naming the holder and the instant
// the lease lapses. Leases live behind LeaseStore so that several gateway
// nodes can share them (a compare-and-set in Redis); MemoryLeases serves a
// single node.
//
// The HTTP layer stays thin. For POST /api/v1/cameras/{camera}/ptz:
//
//	cmd, err := ptz.ParseCommand(body)          // 400/413 on bad input
//	// check the `ptz` permission, then:
//	res, err := ctrl.Do(ctx, cam, holder, cmd)   // cam from the device's `ptz` field
//	// write the audit entry (op, holder, outcome), then:
//	status, errBody := ptz.HTTPError(err)        // 200 with res when err == nil
//
// and for GET …/ptz/presets, ctrl.Presets(ctx, cam, holder). Listing presets
// does not take the lease: it moves nothing, and an operator should see them
// while someone else is steering. HTTPError maps the named errors in one
// place: *FieldError → 400, ErrCommandTooLarge → 413, ErrNotConfigured → 404,
// *ErrLeaseHeld → 409 (with holder and until), ErrCamera → 502 (with the
// camera's fault reason), ErrUnreachable → 502, ErrTimeout → 504.
//
// The same ONVIF client fetches a camera's own JPEG for snapshots
// (Snapshot: the media service's GetSnapshotUri, then an HTTP GET with
// Basic or Digest auth, credentials sent only to the device's host); it
// takes no lease.
package ptz
