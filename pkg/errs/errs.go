// Package errs holds the closed set of errors named by the storage
// contracts (event log and blob store). Every adapter returns these types,
// so callers such as the HTTP API can map any failure to its documented
// status with errors.As, whatever backend produced it.
//
// Each type carries a human message. Adapters wrap lower-level causes in
// StorageError.Err so the original error stays inspectable.
package errs

import (
	"errors"
	"fmt"
)

// Type tags as they appear in the "type" field of API error bodies.
const (
	TypeConflict         = "ConflictError"
	TypeRange            = "RangeError"
	TypeStorage          = "StorageError"
	TypeValidation       = "ValidationError"
	TypeInvalidBlobName  = "InvalidBlobNameError"
	TypeBlobWrongKind    = "BlobWrongKindError"
	TypeNoContinuation   = "NoContinuationError"
	defaultStorageStatus = 503
)

// Typed is implemented by every error of this package.
type Typed interface {
	error
	// TypeTag is the contract's name for the error, e.g. "ConflictError".
	TypeTag() string
}

// ConflictError: an append at a sequence id that is not the log's next id.
type ConflictError struct {
	NextSequenceID uint64
	Message        string
}

func (e *ConflictError) Error() string   { return e.Message }
func (e *ConflictError) TypeTag() string { return TypeConflict }

// Conflict builds a ConflictError for an append at attempted when next is
// the log's next id.
func Conflict(attempted, next uint64) *ConflictError {
	return &ConflictError{
		NextSequenceID: next,
		Message:        fmt.Sprintf("cannot append at sequence id %d: the next id is %d", attempted, next),
	}
}

// RangeError: a sequence id outside the log.
type RangeError struct{ Message string }

func (e *RangeError) Error() string   { return e.Message }
func (e *RangeError) TypeTag() string { return TypeRange }

// Range builds a RangeError with a formatted message.
func Range(format string, args ...any) *RangeError {
	return &RangeError{Message: fmt.Sprintf(format, args...)}
}

// StorageError: the backing store failed, or the data is missing.
// StatusCode is HTTP-like (404 for a missing blob); zero means unknown,
// which the API reports as 503.
type StorageError struct {
	StatusCode int
	Message    string
	Err        error
}

func (e *StorageError) Error() string {
	if e.Err != nil && e.Message == "" {
		return e.Err.Error()
	}
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}
func (e *StorageError) TypeTag() string { return TypeStorage }
func (e *StorageError) Unwrap() error   { return e.Err }

// Status is the HTTP status the API reports for this error.
func (e *StorageError) Status() int {
	if e.StatusCode >= 400 && e.StatusCode <= 599 {
		return e.StatusCode
	}
	return defaultStorageStatus
}

// Storage wraps cause as a StorageError with no specific status.
func Storage(cause error, format string, args ...any) *StorageError {
	return &StorageError{Message: fmt.Sprintf(format, args...), Err: cause}
}

// NotFound is the StorageError of a missing blob or item.
func NotFound(format string, args ...any) *StorageError {
	return &StorageError{StatusCode: 404, Message: fmt.Sprintf(format, args...)}
}

// ValidationError: the request or entry is malformed.
type ValidationError struct{ Message string }

func (e *ValidationError) Error() string   { return e.Message }
func (e *ValidationError) TypeTag() string { return TypeValidation }

// Validation builds a ValidationError with a formatted message.
func Validation(format string, args ...any) *ValidationError {
	return &ValidationError{Message: fmt.Sprintf(format, args...)}
}

// InvalidBlobNameError: a blob or directory name breaks the naming rules.
type InvalidBlobNameError struct {
	Name    string
	Message string
}

func (e *InvalidBlobNameError) Error() string   { return e.Message }
func (e *InvalidBlobNameError) TypeTag() string { return TypeInvalidBlobName }

// BlobWrongKindError: a blob was used as a directory or the reverse.
type BlobWrongKindError struct {
	Name    string
	Message string
}

func (e *BlobWrongKindError) Error() string   { return e.Message }
func (e *BlobWrongKindError) TypeTag() string { return TypeBlobWrongKind }

// WrongKind builds a BlobWrongKindError for name.
func WrongKind(name string, isDir bool) *BlobWrongKindError {
	what := "a blob"
	if isDir {
		what = "a directory"
	}
	return &BlobWrongKindError{Name: name, Message: fmt.Sprintf("%q is %s", name, what)}
}

// NoContinuationError: a continuation token that does not belong to this
// directory, was tampered with, or is no longer valid.
type NoContinuationError struct{ Message string }

func (e *NoContinuationError) Error() string   { return e.Message }
func (e *NoContinuationError) TypeTag() string { return TypeNoContinuation }

// NoContinuation builds a NoContinuationError with a formatted message.
func NoContinuation(format string, args ...any) *NoContinuationError {
	return &NoContinuationError{Message: fmt.Sprintf(format, args...)}
}

// TypeOf returns the contract type tag of err (looking through wrapping),
// or "" when err is not one of this package's errors.
func TypeOf(err error) string {
	var t Typed
	if errors.As(err, &t) {
		return t.TypeTag()
	}
	return ""
}
