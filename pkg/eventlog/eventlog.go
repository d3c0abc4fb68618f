// Package eventlog defines the event log contract of the spreadsheet: one
// append-only log per sheet with dense sequence ids, optimistic
// concurrency on append, mutable metadata, paged and snapshot-relative
// queries and truncation.
//
// # Entries are opaque JSON documents
//
// The log is not generic over an entry type and has no codec parameter.
// An entry's body is a JSON object (its "type" tag plus its own fields),
// held as bytes. The log checks only that shape; it never decodes the
// fields. This is deliberate:
//
//   - unknown fields and unknown entry types survive a round trip
//     byte for byte, as the contract requires, with no effort from any
//     backend;
//   - every backend (memory, file, DynamoDB) stores the same bytes, so
//     there is one encoding, owned by the layer that understands it (the
//     spreadsheet's cell package decodes SetCellValueAndFormat);
//   - the log stays usable for entry types that do not exist yet.
//
// Metadata (snapshot, history, pending) is kept beside the body, never
// inside it, because it changes after the entry is written. A body that
// carries a metadata key is refused, so the HTTP representation, which
// merges metadata into the entry object, is never ambiguous.
//
// # Batches
//
// AddEntries appends up to MaxBatch entries at consecutive ids as one
// atomic write: one transaction and one fsync in the embedded store, one
// DynamoDB transaction. A bulk load then costs a request per batch, not
// per entry, and a reader never sees half of one. AddEntry is the batch of
// one entry, on the same code path in every backend.
//
// # Errors
//
// Implementations return the errors of package errs: ConflictError,
// RangeError, StorageError and ValidationError, always matchable with
// errors.As through any wrapping.
package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sheetlog/sheetlog/internal/jsonscan"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// SequenceID is the position of an entry in its log. The first entry ever
// written is 0; ids are dense and never reused.
type SequenceID uint64

// WorkflowSnapshot is the only workflow id the spreadsheet uses today.
const WorkflowSnapshot = "snapshot"

// Metadata holds the three fields of an entry that may change after it is
// written. The empty string means absent: a field that is set always holds
// a non-empty string.
type Metadata struct {
	// Snapshot is the blob id of a snapshot made at this entry.
	Snapshot string
	// History is the blob id of an external history of the log before this
	// entry. Reserved: stored and returned faithfully.
	History string
	// Pending names a workflow requested at this entry that has not
	// finished yet.
	Pending string
}

// Entry is one log entry: an immutable JSON body and mutable metadata.
type Entry struct {
	// Body is a JSON object with a string "type" member and the entry's
	// own fields. It never holds the metadata keys.
	Body json.RawMessage
	Metadata
}

// SnapshotRef names the newest snapshot of a log.
type SnapshotRef struct {
	SequenceID SequenceID
	BlobID     string
}

// From is the start of a query: a sequence id, the first entry still in
// the log (FromStart, the zero value) or the newest entry with a snapshot
// (FromSnapshot; the first entry when none has one).
type From struct {
	kind fromKind
	id   SequenceID
}

type fromKind uint8

const (
	fromStart fromKind = iota
	fromSnapshot
	fromID
)

var (
	// FromStart starts a query at the first entry still in the log.
	FromStart = From{kind: fromStart}
	// FromSnapshot starts a query at the newest entry with a snapshot.
	FromSnapshot = From{kind: fromSnapshot}
)

// FromID starts a query at id.
func FromID(id SequenceID) From { return From{kind: fromID, id: id} }

// ID returns the numeric start and true, or false for FromStart and
// FromSnapshot.
func (f From) ID() (SequenceID, bool) { return f.id, f.kind == fromID }

// IsSnapshot reports whether f is FromSnapshot.
func (f From) IsSnapshot() bool { return f.kind == fromSnapshot }

// To is the end of a query (exclusive): a sequence id or the log's next id
// (ToEnd, the zero value). An id beyond the log is clamped to its end.
type To struct {
	set bool
	id  SequenceID
}

// ToEnd ends a query at the log's next id.
var ToEnd = To{}

// ToID ends a query at id (exclusive).
func ToID(id SequenceID) To { return To{set: true, id: id} }

// ID returns the numeric end and true, or false for ToEnd.
func (t To) ID() (SequenceID, bool) { return t.id, t.set }

// Known wraps the sequence id of the newest snapshot a caller knows (0
// when it knows none) for AddEntry, AddEntries and Query.
func Known(id SequenceID) *SequenceID { return &id }

// Page is one reply of Query.
type Page struct {
	// Start is the id of the first entry returned (the resolved start).
	Start SequenceID
	// End is one past the last entry returned; continue from here.
	End SequenceID
	// Complete is true when everything up to the requested end was
	// returned.
	Complete bool
	Entries  []Entry
	// LastSnapshot is set when the caller passed a known snapshot and the
	// log's newest snapshot differs from it.
	LastSnapshot *SnapshotRef
}

// FieldUpdate says what SetMetadata does to one metadata field: leave it
// alone (the zero value), set it to a non-empty string, or clear it.
type FieldUpdate struct {
	op    fieldOp
	value string
}

type fieldOp uint8

const (
	opKeep fieldOp = iota
	opSet
	opClear
)

// Keep leaves a field alone (the zero value of FieldUpdate).
func Keep() FieldUpdate { return FieldUpdate{} }

// Set sets a field to v, which must not be empty.
func Set(v string) FieldUpdate { return FieldUpdate{op: opSet, value: v} }

// Clear removes a field: it is absent afterwards.
func Clear() FieldUpdate { return FieldUpdate{op: opClear} }

// IsKeep, IsSet and IsClear tell the three forms apart; Value is the
// string of a Set.
func (u FieldUpdate) IsKeep() bool  { return u.op == opKeep }
func (u FieldUpdate) IsSet() bool   { return u.op == opSet }
func (u FieldUpdate) IsClear() bool { return u.op == opClear }
func (u FieldUpdate) Value() string { return u.value }

// Apply returns the field's value after the update.
func (u FieldUpdate) Apply(current string) string {
	switch u.op {
	case opSet:
		return u.value
	case opClear:
		return ""
	}
	return current
}

// MetadataUpdate changes some metadata fields of one entry, atomically.
type MetadataUpdate struct {
	Snapshot FieldUpdate
	History  FieldUpdate
	Pending  FieldUpdate
	// IfPending, when not empty, makes the update conditional: it is
	// applied only if the entry's pending field equals IfPending at the
	// moment of the write. This is how a workflow completes: a duplicate
	// or stale completion finds pending already cleared and does nothing.
	IfPending string
}

// Apply returns m with the update applied. It does not check IfPending.
func (u MetadataUpdate) Apply(m Metadata) Metadata {
	return Metadata{
		Snapshot: u.Snapshot.Apply(m.Snapshot),
		History:  u.History.Apply(m.History),
		Pending:  u.Pending.Apply(m.Pending),
	}
}

// CompleteWorkflow is the conditional update that finishes a workflow at
// an entry: clear pending and set snapshot to blobID, only if pending
// still names workflow.
func CompleteWorkflow(workflow, blobID string) MetadataUpdate {
	return MetadataUpdate{Snapshot: Set(blobID), Pending: Clear(), IfPending: workflow}
}

// Validate checks the update's own shape: a Set carries a non-empty value.
func (u MetadataUpdate) Validate() error {
	for _, f := range []struct {
		name string
		u    FieldUpdate
	}{{"snapshot", u.Snapshot}, {"history", u.History}, {"pending", u.Pending}} {
		if f.u.IsSet() && f.u.value == "" {
			return errs.Validation("metadata field %s cannot be set to the empty string; clear it instead", f.name)
		}
	}
	return nil
}

// EventLog is the log of one spreadsheet. Implementations are safe for
// concurrent use, including by several processes sharing one backend.
type EventLog interface {
	// AddEntry appends e at id, which must equal the log's next id; any
	// other id fails with *errs.ConflictError carrying the next id, and
	// writes nothing. Exactly one of several concurrent appenders of the
	// same id succeeds. An acknowledged append is durable.
	//
	// When known is not nil and the log's newest snapshot has a different
	// id, the reply names that snapshot. The log does not keep e.Body
	// after returning, so callers may reuse the buffer.
	AddEntry(ctx context.Context, id SequenceID, e Entry, known *SequenceID) (*SnapshotRef, error)

	// AddEntries appends entries at id, id+1, ..., atomically: after any
	// failure, crash or lost reply either all of them are in the log or
	// none is, and no reader ever sees some of them without the others.
	// It takes 1 to MaxBatch entries, at most one of them with pending
	// set (ValidateBatch); anything else is a *errs.ValidationError.
	// Conflicts are as in AddEntry: id must be the log's next id. The
	// reply's snapshot describes the log after the whole batch, so a
	// snapshot carried by one of the entries counts. AddEntry(id, e) is
	// AddEntries(id, [e]); every implementation gives both one code path.
	// The log keeps neither the slice nor the bodies after returning.
	AddEntries(ctx context.Context, id SequenceID, entries []Entry, known *SequenceID) (*SnapshotRef, error)

	// SetMetadata changes metadata fields of the entry at id, all or
	// nothing. An id outside [start, next) fails with *errs.RangeError.
	// It reports false, with no error and no change, when the update is
	// conditional (IfPending) and the condition does not hold.
	SetMetadata(ctx context.Context, id SequenceID, u MetadataUpdate) (applied bool, err error)

	// Query returns entries from from (inclusive) to to (exclusive), one
	// bounded page at a time; callers continue from Page.End until
	// Page.Complete. A numeric from below the first entry or above the
	// next id fails with *errs.RangeError.
	Query(ctx context.Context, from From, to To, known *SequenceID) (Page, error)

	// Truncate removes every entry before start, which must lie in
	// [first, next]. Ids are never reused.
	Truncate(ctx context.Context, start SequenceID) error
}

// Store opens the log of any sheet. Sheet ids are checked with
// sheetid.Validate before they reach a key.
type Store interface {
	Log(sheet string) (EventLog, error)
}

// PendingEntry names an entry whose pending field is set: a workflow that
// was requested there and has not finished. Stores list them across sheets
// so that a worker pool at start-up, or a sweeper, can re-send workflows
// whose messages were lost.
type PendingEntry struct {
	Sheet      string
	SequenceID SequenceID
	Workflow   string
	// Since is when pending was set, from stores that record it (the
	// DynamoDB store's pending index); zero from the others.
	Since time.Time
}

// ValidateEntry checks that e can be stored: its body is a JSON object
// with a non-empty string "type" member and no metadata member, and each
// metadata field that is set is non-empty (the empty string is how absence
// is written). Every implementation calls it before writing.
func ValidateEntry(e Entry) error {
	if plainBody(e.Body) {
		return nil
	}
	return validateEntry(e.Body)
}

// validateEntry is ValidateEntry on the scanner: the reference plainBody
// is checked against, and the source of every error's message.
func validateEntry(body []byte) error {
	s := jsonscan.New(body)
	if s.Peek() != '{' {
		return errs.Validation("entry body must be a JSON object")
	}
	var typ string
	hasType := false
	err := s.Object(func(key string) error {
		switch key {
		case "type":
			if s.Peek() != '"' {
				return errs.Validation(`entry "type" must be a string`)
			}
			var err error
			typ, err = s.String()
			hasType = true
			return err
		case "snapshot", "history", "pending":
			return errs.Validation("entry body may not hold the metadata member %q; metadata is kept beside the body", key)
		}
		return s.Skip()
	})
	if err == nil {
		err = s.End()
	}
	var ve *errs.ValidationError
	switch {
	case errors.As(err, &ve):
		return err
	case err != nil:
		return errs.Validation("entry body is not valid JSON: %v", err)
	case !hasType || typ == "":
		return errs.Validation(`entry body needs a non-empty string "type" member`)
	}
	return nil
}
