package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// Type tags of the errors that come from the HTTP layer itself rather
// than from the stores (those are in package errs).
const (
	TypeUnauthorized     = "Unauthorized"
	TypeNotFound         = "NotFound"
	TypeMethodNotAllowed = "MethodNotAllowed"
	TypePayloadTooLarge  = "PayloadTooLarge"
	// TypeInternal is the reply of a recovered panic: a bug, never an
	// expected outcome of any request.
	TypeInternal = "InternalError"
)

// apiError is an error reply: status, type tag, message and the extra
// members some types carry.
type apiError struct {
	status  int
	typ     string
	message string
	// nextSequenceID is set for ConflictError.
	nextSequenceID *uint64
	// statusCode is set for StorageError.
	statusCode int
	// cause is logged, never sent.
	cause error
}

func (e *apiError) Error() string { return e.typ + ": " + e.message }

func newError(status int, typ, message string) *apiError {
	return &apiError{status: status, typ: typ, message: message}
}

func validation(format string, args ...any) *apiError {
	return toAPIError(errs.Validation(format, args...))
}

// toAPIError maps any error to its reply, following the table of the REST
// contract. Errors that are none of the contract's types come from a
// backend that failed in a way its adapter did not classify; they are
// reported as a 503 StorageError (the only 5xx the contract allows) and
// their text stays in the log, since it may name hosts, paths or keys.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var t errs.Typed
	if !errors.As(err, &t) {
		e := newError(http.StatusServiceUnavailable, errs.TypeStorage, "a backing store failed")
		e.statusCode = http.StatusServiceUnavailable
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			e.message = "the request was cancelled or timed out before the store replied"
		}
		e.cause = err
		return e
	}
	switch tag := t.TypeTag(); tag {
	case errs.TypeConflict:
		var ce *errs.ConflictError
		if errors.As(err, &ce) {
			e := newError(http.StatusConflict, tag, ce.Message)
			n := ce.NextSequenceID
			e.nextSequenceID = &n
			return e
		}
	case errs.TypeStorage:
		var se *errs.StorageError
		if errors.As(err, &se) {
			status := se.Status()
			msg := se.Message
			if msg == "" {
				msg = "storage error"
			}
			if status >= 500 {
				msg = "a backing store failed: " + msg
			}
			e := newError(status, tag, msg)
			e.statusCode = status
			e.cause = err
			return e
		}
	case errs.TypeRange:
		return newError(http.StatusRequestedRangeNotSatisfiable, tag, t.Error())
	case errs.TypeBlobWrongKind:
		return newError(http.StatusConflict, tag, t.Error())
	case errs.TypeValidation, errs.TypeInvalidBlobName, errs.TypeNoContinuation:
		return newError(http.StatusBadRequest, tag, t.Error())
	}
	// A typed error of a kind this version does not know: the request
	// reached a store, so it is the store's answer; 503 keeps clients
	// retrying rather than giving up on a reply they cannot read.
	e := newError(http.StatusServiceUnavailable, errs.TypeStorage, "a backing store failed")
	e.statusCode = http.StatusServiceUnavailable
	e.cause = err
	return e
}

// maxMessageBytes bounds an error's message: messages quote the input
// they refuse, and a reply must not repeat a huge input back.
const maxMessageBytes = 512

func (e *apiError) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"type":`...)
	dst = cell.AppendString(dst, e.typ)
	dst = append(dst, `,"message":`...)
	dst = cell.AppendString(dst, truncate(e.message, maxMessageBytes))
	if e.nextSequenceID != nil {
		dst = append(dst, `,"nextSequenceId":`...)
		dst = appendID(dst, *e.nextSequenceID)
	}
	if e.typ == errs.TypeStorage {
		dst = append(dst, `,"statusCode":`...)
		dst = strconv.AppendInt(dst, int64(e.statusCode), 10)
	}
	return append(dst, '}')
}

// ValidationErrorBody is the JSON body of a 400 ValidationError saying
// msg, for the replies a server makes outside the handler (to requests
// net/http cannot frame), so that they read like the handler's own.
func ValidationErrorBody(msg string) []byte {
	return newError(http.StatusBadRequest, errs.TypeValidation, msg).appendJSON(nil)
}

// writeError sends err's reply and records it for the request log.
func (rq *request) fail(err error) {
	e := toAPIError(err)
	rq.errType = e.typ
	if e.cause != nil {
		level := rq.logLevel(e.status)
		if level < slog.LevelError {
			// A store's answer to the request (a missing blob) or a
			// failure after the client left: worth a look when debugging.
			level = slog.LevelDebug
		}
		rq.h.log.LogAttrs(rq.r.Context(), level, "store error", slog.String("route", rq.pattern()),
			slog.String("sheet", rq.sheet), slog.Int("status", e.status), slog.Any("err", e.cause))
	}
	rq.writeJSON(e.status, e.appendJSON(nil))
}

// appendID appends a sequence id as a JSON string of decimal digits: ids
// are 64-bit and JavaScript numbers are not.
func appendID(dst []byte, id uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, id, 10)
	return append(dst, '"')
}
