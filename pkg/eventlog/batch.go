package eventlog

import (
	"errors"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

// MaxBatch is the largest number of entries one AddEntries call appends.
// It is fixed by the DynamoDB backend: a transaction holds at most 100
// items, and an append writes the sheet's head item beside its entries.
// Every backend enforces it, so a caller's batches work on all of them.
const MaxBatch = 99

// ValidateBatch checks that entries can be appended by one AddEntries
// call: 1 to MaxBatch entries, each valid as ValidateEntry says, and at
// most one of them with pending set (a batch requests at most one
// workflow). The message of an error about one entry names its index in
// the batch, unless the batch holds that entry alone. Every
// implementation calls it before writing.
func ValidateBatch(entries []Entry) error {
	if n := len(entries); n == 0 || n > MaxBatch {
		return errs.Validation("a batch holds 1 to %d entries, not %d", MaxBatch, n)
	}
	pending := -1
	for i, e := range entries {
		if err := ValidateEntry(e); err != nil {
			return BatchEntryError(len(entries), i, err)
		}
		if e.Pending == "" {
			continue
		}
		if pending >= 0 {
			return errs.Validation("entries %d and %d of the batch both set pending; at most one entry of a batch may request a workflow", pending, i)
		}
		pending = i
	}
	return nil
}

// BatchEntryError returns err, a ValidationError about entry i of a batch
// of n entries, with a message that names the entry's index when n > 1.
// Backends with checks of their own (sizes, encodings) use it so that
// their messages name the entry as ValidateBatch's do.
func BatchEntryError(n, i int, err error) error {
	var ve *errs.ValidationError
	if n == 1 || !errors.As(err, &ve) {
		return err
	}
	return errs.Validation("entry %d of the batch: %s", i, ve.Message)
}
