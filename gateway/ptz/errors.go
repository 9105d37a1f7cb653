package ptz

import (
	"errors"
	"net/http"
	"time"
)

// Named errors callers branch on with errors.Is.
var (
	// ErrCamera: the camera answered but refused or garbled the request (a
	// SOAP fault, a bad HTTP status, a malformed answer). The chain holds a
	// *CameraError with the reason. HTTP 502.
	ErrCamera = errors.New("ptz: camera error")
	// ErrTimeout: the camera did not answer within Controller.Timeout. HTTP 504.
	ErrTimeout = errors.New("ptz: camera timed out")
	// ErrUnreachable: no connection to the camera (refused, no route, DNS). HTTP 502.
	ErrUnreachable = errors.New("ptz: camera unreachable")
	// ErrNotConfigured: the device has no usable `ptz.onvif_url`. HTTP 404.
	ErrNotConfigured = errors.New("ptz: camera has no PTZ configured")
	// ErrNotInitialized: Controller.Initialize was not called. HTTP 500.
	ErrNotInitialized = errors.New("ptz: controller not initialized")
)

// CameraError is what the camera said when it refused an operation. Code is
// the innermost SOAP fault (sub)code, e.g. "ter:NotAuthorized", empty when the
// camera sent no fault.
type CameraError struct {
	Op     string
	Code   string
	Reason string
}

func (e *CameraError) Error() string {
	s := "ptz: camera refused " + e.Op + ": " + e.Reason
	if e.Code != "" {
		s += " (" + e.Code + ")"
	}
	return s
}

// Unwrap makes errors.Is(err, ErrCamera) true.
func (e *CameraError) Unwrap() error { return ErrCamera }

// ErrorBody is the JSON answer for a failed PTZ request: {"error": …} plus,
// for a 400, the field, and for a 409, who holds the camera and until when.
type ErrorBody struct {
	Error  string     `json:"error"`
	Field  string     `json:"field,omitempty"`
	Holder *Holder    `json:"holder,omitempty"`
	Until  *time.Time `json:"until,omitempty"`
}

// HTTPError maps an error of Do, Presets or ParseCommand to an HTTP status
// and body. Transport details (camera addresses) stay in the logs; the body
// says only what the viewer can act on.
func HTTPError(err error) (int, ErrorBody) {
	var (
		field  *FieldError
		held   *ErrLeaseHeld
		camErr *CameraError
	)
	switch {
	case err == nil:
		return http.StatusOK, ErrorBody{}
	case errors.As(err, &field):
		return http.StatusBadRequest, ErrorBody{Error: field.Field + ": " + field.Reason, Field: field.Field}
	case errors.Is(err, ErrCommandTooLarge):
		return http.StatusRequestEntityTooLarge, ErrorBody{Error: "command body too large"}
	case errors.As(err, &held):
		h, until := held.Holder, held.Until.UTC()
		return http.StatusConflict, ErrorBody{
			Error:  "camera is controlled by " + h.Kind + " " + h.ID + " until " + until.Format(time.RFC3339),
			Holder: &h, Until: &until,
		}
	case errors.Is(err, ErrNotConfigured):
		return http.StatusNotFound, ErrorBody{Error: "camera has no PTZ configured"}
	case errors.As(err, &camErr):
		return http.StatusBadGateway, ErrorBody{Error: "camera refused " + camErr.Op + ": " + camErr.Reason}
	case errors.Is(err, ErrTimeout):
		return http.StatusGatewayTimeout, ErrorBody{Error: "camera did not answer in time"}
	case errors.Is(err, ErrUnreachable):
		return http.StatusBadGateway, ErrorBody{Error: "camera unreachable"}
	default:
		return http.StatusInternalServerError, ErrorBody{Error: "internal error"}
	}
}
