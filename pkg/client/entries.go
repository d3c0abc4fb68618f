package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// MaxBodyBytes is the API's limit on a request body (64 KiB): a batch
// append must fit in it.
const MaxBodyBytes = 64 << 10

// BatchOverheadBytes bounds what a batch append's request adds to its
// entries' bodies: the members around them and one comma per entry. A
// batch of bodies b₁…bₙ fits in one request when Σ(len(bᵢ)+1) ≤
// MaxBodyBytes − BatchOverheadBytes.
const BatchOverheadBytes = 96

// Canonical returns the body the API stores for e: the server decodes
// an appended entry and writes it back in the one encoding of package
// cell (invalid UTF-8 replaced), so that encoding is what a later read
// returns, byte for byte. The client sends it in that form, and a lost
// reply is resolved by comparing those bytes.
func Canonical(e cell.Entry) []byte {
	e.Cell = e.Cell.ValidUTF8()
	return e.AppendJSON(nil)
}

// canonicalBodies checks entries as the API will (a batch of 1 to
// eventlog.MaxBatch SetCellValueAndFormat entries with no metadata) and
// returns their canonical bodies.
func canonicalBodies(entries []eventlog.Entry) ([][]byte, error) {
	if err := eventlog.ValidateBatch(entries); err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(entries))
	for i, e := range entries {
		if e.Metadata != (eventlog.Metadata{}) {
			return nil, readOnly(fmt.Sprintf("appending an entry with metadata (entry %d)", i))
		}
		ce, err := cell.DecodeEntry(e.Body, cell.Strict)
		if err != nil {
			return nil, eventlog.BatchEntryError(len(entries), i, err)
		}
		bodies[i] = Canonical(ce)
	}
	return bodies, nil
}

var metadataKeys = [...]string{`"snapshot"`, `"history"`, `"pending"`}

// splitEntry takes an entry as the API shows it (the body with its
// metadata merged in as members) apart. The API adds the metadata
// members at the end of the body object, so cutting them off gives back
// the stored body, byte for byte (except white space the body had
// before its closing brace).
func splitEntry(raw []byte) (eventlog.Entry, error) {
	raw = bytes.TrimSpace(raw)
	has := false
	for _, k := range metadataKeys {
		if bytes.Contains(raw, []byte(k)) {
			has = true
			break
		}
	}
	if !has {
		return eventlog.Entry{Body: bytes.Clone(raw)}, nil
	}
	type member struct {
		start, end int // start: just after the previous member or the brace
		key        string
		meta       bool
	}
	var (
		e       eventlog.Entry
		members []member
		dec     = json.NewDecoder(bytes.NewReader(raw))
	)
	bad := func(err error) (eventlog.Entry, error) {
		return eventlog.Entry{}, errs.Storage(err, "the API returned an entry that is not a JSON object")
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return bad(err)
	}
	for dec.More() {
		start := int(dec.InputOffset())
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok {
			return bad(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return bad(err)
		}
		m := member{start: start, end: int(dec.InputOffset()), key: key}
		var field *string
		switch key {
		case "snapshot":
			field = &e.Snapshot
		case "history":
			field = &e.History
		case "pending":
			field = &e.Pending
		}
		if field != nil {
			if err := json.Unmarshal(v, field); err != nil || *field == "" {
				return bad(errors.New("metadata member " + key + " is not a non-empty string"))
			}
			m.meta = true
		}
		members = append(members, m)
	}
	// The usual shape: every metadata member after every body member.
	lastKept, firstMeta := -1, len(members)
	for i, m := range members {
		if m.meta {
			firstMeta = min(firstMeta, i)
		} else {
			lastKept = i
		}
	}
	if lastKept < 0 {
		return bad(errors.New("the entry holds nothing but metadata"))
	}
	if lastKept < firstMeta {
		end := members[len(members)-1].end
		e.Body = append(bytes.Clone(raw[:members[lastKept].end]), raw[end:]...)
		return e, nil
	}
	b := []byte{'{'}
	for _, m := range members {
		if m.meta {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, bytes.TrimLeft(raw[m.start:m.end], " \t\r\n,")...)
	}
	e.Body = append(b, '}')
	return e, nil
}
