package eventlog

import (
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

func TestValidateEntryShapes(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"type":"X"}`: true, ` {"type":"X","a":{"pending":1}} `: true,
		`{"type":""}`: false, `{"type":1}`: false, `{}`: false, `[]`: false, ``: false,
		`{"type":"X","pending":"s"}`: false, `{"type":"X"} {}`: false, `{"type":"X",}`: false,
	} {
		if err := ValidateEntry(Entry{Body: []byte(body)}); (err == nil) != ok {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestValidateBatch(t *testing.T) {
	ok := Entry{Body: []byte(`{"type":"X"}`)}
	pending := Entry{Body: ok.Body, Metadata: Metadata{Pending: WorkflowSnapshot}}
	bad := Entry{Body: []byte(`{"type":""}`)}
	n := func(k int, e Entry) []Entry {
		out := make([]Entry, k)
		for i := range out {
			out[i] = e
		}
		return out
	}
	for _, c := range []struct {
		name  string
		batch []Entry
		msg   string // "" when valid
	}{
		{"one", n(1, ok), ""},
		{"max", n(MaxBatch, ok), ""},
		{"one pending", append(n(5, ok), pending), ""},
		{"none", nil, "1 to 99 entries, not 0"},
		{"too many", n(MaxBatch+1, ok), "1 to 99 entries, not 100"},
		{"two pending", []Entry{ok, pending, ok, pending}, "entries 1 and 3 of the batch both set pending"},
		{"bad alone", []Entry{bad}, `entry body needs a non-empty string "type" member`},
		{"bad at 57", append(append(n(57, ok), bad), ok), `entry 57 of the batch: entry body needs a non-empty string "type" member`},
	} {
		err := ValidateBatch(c.batch)
		switch {
		case c.msg == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.msg != "" && (err == nil || errs.TypeOf(err) != errs.TypeValidation || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%s: %v, want a ValidationError %q", c.name, err, c.msg)
		}
	}
	// A batch of one is an entry: its errors do not speak of a batch.
	if err := ValidateBatch([]Entry{bad}); strings.Contains(err.Error(), "batch") {
		t.Errorf("the error of a batch of one is %q", err)
	}
	// Only ValidationErrors are renamed after their entry.
	other := errs.Storage(nil, "x")
	if got := BatchEntryError(3, 1, other); got != error(other) {
		t.Errorf("BatchEntryError changed a StorageError: %v", got)
	}
}
