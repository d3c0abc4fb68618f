package dynamo

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Item layout (docs/dynamodb.md has the whole story).
//
// Entry item, key (sheet, seq >= 0):
//
//	body         S  the entry body, the JSON bytes exactly as appended
//	snapshot     S  metadata, absent when unset (awsschema)
//	history      S  metadata, absent when unset
//	pending      S  metadata, absent when unset; projected into the pending index
//	pendingShard N  awsschema.PendingShard(sheet, seq) while pending is set;
//	                partition key of the pending index
//	pendingSince N  Unix ms when pending was set; sort key of the index
//	tok          S  random token of the append that wrote the item
//	mtok         S  random token of the last SetMetadata that changed it
//	mv           N  the head's metadata version that write produced
//
// Head item, key (sheet, seq = -1), one per sheet, created by the first
// append:
//
//	next     N  the next sequence id
//	first    N  the first id still in the log (the truncation point)
//	snapSeq  N  the newest entry with a snapshot (absent: none)
//	snapBlob S  its snapshot blob id
//	mv       N  metadata version: bumped by every SetMetadata
const (
	attrBody         = "body"
	attrTok          = "tok"
	attrMTok         = "mtok"
	attrMV           = "mv"
	attrNext         = "next"
	attrFirst        = "first"
	attrSnapSeq      = "snapSeq"
	attrSnapBlob     = "snapBlob"
	attrSheet        = awsschema.AttrSheet
	attrSeq          = awsschema.AttrSeq
	attrSnapshot     = awsschema.AttrSnapshot
	attrHistory      = awsschema.AttrHistory
	attrPending      = awsschema.AttrPending
	attrPendingSince = awsschema.AttrPendingSince
	attrPendingShard = awsschema.AttrPendingShard

	// headSeq is the sort key of the head item: below every entry, so a
	// key range of entries never includes it.
	headSeq = -1
)

// Size limits. DynamoDB refuses items over 400 KB (names and values
// counted); an entry is refused before the call if its item could ever
// exceed that, counting the largest metadata a later SetMetadata may add,
// so neither an append nor a metadata change can fail half-way on size.
const (
	maxItemBytes = 400_000 // "400 KB"; DynamoDB allows 409,600, emulators a little less
	// MaxMetadataLen is the longest metadata value (blob ids and workflow
	// names are short).
	MaxMetadataLen = 1024
	// numberBytes bounds the stored size of one number attribute.
	numberBytes = 21
	tokenLen    = 22 // base64 (raw URL) of 16 random bytes
)

// maxTransactBytes is the most the items of one transaction may hold
// together ("4 MB"; counted as DynamoDB counts item sizes, see itemSize).
// A batch append is one transaction, so it bounds a batch's total size.
const maxTransactBytes = 4_000_000

// headMaxBytes bounds the size of a head item: its key and every
// attribute, with the longest snapshot blob id.
var headMaxBytes = len(attrSheet) + sheetMaxLen + len(attrSeq) + numberBytes +
	len(attrNext) + len(attrFirst) + len(attrSnapSeq) + len(attrMV) + 4*numberBytes +
	len(attrSnapBlob) + MaxMetadataLen

// MaxBodyBytes is the largest entry body the log stores.
var MaxBodyBytes = maxItemBytes - entryOverhead(sheetMaxLen)

const sheetMaxLen = 64

// entryOverhead is the size of an entry item without its body, with every
// optional attribute at its largest.
func entryOverhead(sheetLen int) int {
	n := len(attrSheet) + sheetLen + len(attrSeq) + numberBytes + len(attrBody)
	n += len(attrTok) + tokenLen + len(attrMTok) + tokenLen + len(attrMV) + numberBytes
	n += len(attrSnapshot) + len(attrHistory) + len(attrPending) + 3*MaxMetadataLen
	n += len(attrPendingSince) + numberBytes + len(attrPendingShard) + numberBytes
	return n
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num[T ~int | ~int64 | ~uint64](n T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}

func headKey(sheet string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrSheet: str(sheet), attrSeq: num(headSeq)}
}

func entryKey(sheet string, id eventlog.SequenceID) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrSheet: str(sheet), attrSeq: num(uint64(id))}
}

// checkEntry validates e beyond eventlog.ValidateEntry: what DynamoDB
// would refuse must be refused here, as a ValidationError, before any call.
func checkEntry(e eventlog.Entry) error {
	if err := eventlog.ValidateEntry(e); err != nil {
		return err
	}
	if !utf8.Valid(e.Body) {
		return errs.Validation("entry body is not valid UTF-8")
	}
	if len(e.Body) > MaxBodyBytes {
		return errs.Validation("entry body is %d bytes; at most %d fit in a DynamoDB item", len(e.Body), MaxBodyBytes)
	}
	for _, f := range []struct{ name, v string }{{"snapshot", e.Snapshot}, {"history", e.History}, {"pending", e.Pending}} {
		if err := checkMetadataValue(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

func checkMetadataValue(name, v string) error {
	if len(v) > MaxMetadataLen {
		return errs.Validation("metadata field %s is %d bytes; at most %d are allowed", name, len(v), MaxMetadataLen)
	}
	if !utf8.ValidString(v) {
		return errs.Validation("metadata field %s is not valid UTF-8", name)
	}
	return nil
}

// entryItem is the item of a new entry.
func entryItem(sheet string, id eventlog.SequenceID, e eventlog.Entry, tok string, nowMS int64) map[string]types.AttributeValue {
	it := entryKey(sheet, id)
	it[attrBody] = str(string(e.Body))
	it[attrTok] = str(tok)
	if e.Snapshot != "" {
		it[attrSnapshot] = str(e.Snapshot)
	}
	if e.History != "" {
		it[attrHistory] = str(e.History)
	}
	if e.Pending != "" {
		it[attrPending] = str(e.Pending)
		it[attrPendingSince] = num(nowMS)
		it[attrPendingShard] = num(pendingShard(sheet, id))
	}
	return it
}

// pendingShard is the pending index partition of an entry.
func pendingShard(sheet string, id eventlog.SequenceID) int {
	return awsschema.PendingShard(sheet, uint64(id))
}

// itemSize is the size of an item as DynamoDB counts it for its limits
// and its capacity units: the names of the attributes plus their values,
// a string or binary value by its length, a number by about one byte per
// two significant digits plus one.
func itemSize(it map[string]types.AttributeValue) int {
	n := 0
	for k, v := range it {
		n += len(k)
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			n += len(v.Value)
		case *types.AttributeValueMemberN:
			n += (len(strings.TrimLeft(v.Value, "-0"))+1)/2 + 1
		case *types.AttributeValueMemberB:
			n += len(v.Value)
		default:
			n++
		}
	}
	return n
}

// decoded is an entry item read back.
type decoded struct {
	id    eventlog.SequenceID
	entry eventlog.Entry
	tok   string
	mtok  string
	mv    uint64
}

// decodeEntry reads an entry item. Attributes it does not know are
// ignored, so the layout can grow.
func decodeEntry(it map[string]types.AttributeValue) (decoded, error) {
	var d decoded
	seq, err := getInt(it, attrSeq)
	if err != nil {
		return d, err
	}
	if seq < 0 {
		return d, fmt.Errorf("item at seq %d is not an entry", seq)
	}
	d.id = eventlog.SequenceID(seq)
	body, ok := getString(it, attrBody)
	if !ok {
		return d, fmt.Errorf("entry %d has no %s attribute", seq, attrBody)
	}
	d.entry.Body = []byte(body)
	d.entry.Snapshot, _ = getString(it, attrSnapshot)
	d.entry.History, _ = getString(it, attrHistory)
	d.entry.Pending, _ = getString(it, attrPending)
	d.tok, _ = getString(it, attrTok)
	d.mtok, _ = getString(it, attrMTok)
	if _, ok := it[attrMV]; ok {
		mv, err := getInt(it, attrMV)
		if err != nil {
			return d, err
		}
		d.mv = uint64(mv)
	}
	return d, nil
}

// head is the per-sheet head item. A sheet with no head has never been
// appended to: next = first = 0.
type head struct {
	exists   bool
	next     uint64
	first    uint64
	hasSnap  bool
	snapSeq  uint64
	snapBlob string
	mv       uint64
}

func decodeHead(it map[string]types.AttributeValue) (head, error) {
	var h head
	if len(it) == 0 {
		return h, nil
	}
	h.exists = true
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{attrNext, &h.next}, {attrFirst, &h.first}, {attrMV, &h.mv}} {
		if _, ok := it[f.name]; !ok {
			continue
		}
		v, err := getInt(it, f.name)
		if err != nil {
			return h, err
		}
		*f.dst = uint64(v)
	}
	if _, ok := it[attrSnapSeq]; ok {
		v, err := getInt(it, attrSnapSeq)
		if err != nil {
			return h, err
		}
		h.hasSnap, h.snapSeq = true, uint64(v)
		h.snapBlob, _ = getString(it, attrSnapBlob)
	}
	return h, nil
}

// snapshot is the log's newest snapshot as readers see it. The pointer
// can lag behind a truncation (Truncate does not touch it): an entry below
// first is no longer in the log, and since the pointer names the newest
// snapshot, no entry left in the log has one.
func (h head) snapshot() (eventlog.SnapshotRef, bool) {
	if !h.hasSnap || h.snapSeq < h.first {
		return eventlog.SnapshotRef{}, false
	}
	return eventlog.SnapshotRef{SequenceID: eventlog.SequenceID(h.snapSeq), BlobID: h.snapBlob}, true
}

// lastSnapshot is the reply of AddEntry and Query for a caller that knows
// the snapshot at known.
func (h head) lastSnapshot(known *eventlog.SequenceID) *eventlog.SnapshotRef {
	s, ok := h.snapshot()
	if known == nil || !ok || s.SequenceID == *known {
		return nil
	}
	return &s
}

func getString(it map[string]types.AttributeValue, name string) (string, bool) {
	v, ok := it[name].(*types.AttributeValueMemberS)
	if !ok {
		return "", false
	}
	return v.Value, true
}

func getInt(it map[string]types.AttributeValue, name string) (int64, error) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, fmt.Errorf("attribute %s is missing or not a number", name)
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("attribute %s: %w", name, err)
	}
	return n, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
