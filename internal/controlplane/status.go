package controlplane

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/canarymesh/canarymesh/internal/store"
)

// Status is the error body of every failed request, shaped as Kubernetes' metav1.Status
// so that its reason and code read the same way.
type Status struct {
	Kind       string         `json:"kind"`
	APIVersion string         `json:"apiVersion"`
	Status     string         `json:"status"`
	Message    string         `json:"message"`
	Reason     string         `json:"reason"`
	Code       int            `json:"code"`
	Details    *StatusDetails `json:"details,omitempty"`
}

// StatusDetails lists the causes of an Invalid status.
type StatusDetails struct {
	Causes []Cause `json:"causes,omitempty"`
}

// Cause is one problem: in which item of a batch (0-based), at which field, and what.
type Cause struct {
	Index   int    `json:"index"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Reasons, named as Kubernetes names them.
const (
	ReasonNotFound      = "NotFound"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonConflict      = "Conflict"
	ReasonInvalid       = "Invalid"
	ReasonBadRequest    = "BadRequest"
	ReasonUnauthorized  = "Unauthorized"
	ReasonGone          = "Expired"
	ReasonInternal      = "InternalError"
	ReasonMethod        = "MethodNotAllowed"
)

// StatusError is a Status returned as a Go error, by the server's handlers and the client.
type StatusError struct{ Status Status }

func (e *StatusError) Error() string { return e.Status.Message }

// Unwrap maps a status to the store's sentinel errors, so errors.Is works the same on
// both sides of the API.
func (e *StatusError) Unwrap() error {
	switch e.Status.Reason {
	case ReasonNotFound:
		return store.ErrNotFound
	case ReasonAlreadyExists:
		return store.ErrExists
	case ReasonConflict:
		return store.ErrConflict
	case ReasonGone:
		return store.ErrGone
	}
	return nil
}

func newStatus(code int, reason, msg string) *StatusError {
	return &StatusError{Status: Status{Kind: "Status", APIVersion: "v1", Status: "Failure", Code: code, Reason: reason, Message: msg}}
}

// statusFor turns any error into the status the client sees.
func statusFor(err error) *StatusError {
	var se *StatusError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, store.ErrNotFound):
		return newStatus(http.StatusNotFound, ReasonNotFound, err.Error())
	case errors.Is(err, store.ErrExists):
		return newStatus(http.StatusConflict, ReasonAlreadyExists, err.Error())
	case errors.Is(err, store.ErrConflict):
		return newStatus(http.StatusConflict, ReasonConflict, err.Error())
	case errors.Is(err, store.ErrGone):
		return newStatus(http.StatusGone, ReasonGone, err.Error())
	}
	return newStatus(http.StatusInternalServerError, ReasonInternal, err.Error())
}

func writeError(w http.ResponseWriter, err error) {
	writeJSON(w, statusFor(err).Status.Code, statusFor(err).Status)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}
