package authz

import "errors"

// Errors the HTTP layer maps to status codes in one place.
var (
	ErrNotFound  = errors.New("not found") // 404
	ErrForbidden = errors.New("forbidden") // 403
	ErrConflict  = errors.New("conflict")  // 409
	// ErrMethodNotAllowed: the resource exists, the method does not (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	ErrClosed           = errors.New("authz: service closed")
	// ErrStoreUnavailable: the store cannot be reached (503); see
	// Service.Healthy.
	ErrStoreUnavailable = errors.New("authz: store unavailable")
)

// FieldError is a 400: bad input, naming the JSON field (or query parameter) and why.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, msg string) error { return &FieldError{Field: field, Msg: msg} }
