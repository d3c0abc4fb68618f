package dynamo

import (
	"context"
	"errors"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sheetlog/sheetlog/internal/ctxsleep"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Log is the event log of one sheet.
type Log struct {
	s     *Store
	sheet string
}

var _ eventlog.EventLog = (*Log)(nil)

// Sheet is the log's sheet id.
func (l *Log) Sheet() string { return l.sheet }

// maxRounds bounds the optimistic loops (a read validated against the
// head, a write conditioned on the head's version) before they give up
// with a StorageError: each round lost means another writer won, so
// running out needs sustained contention on one sheet.
const maxRounds = 100

// expr collects the placeholders of one request's expressions. DynamoDB
// refuses placeholders an expression does not use, so every item of a
// transaction gets its own.
type expr struct {
	names  map[string]string
	values map[string]types.AttributeValue
}

func newExpr() *expr {
	return &expr{names: map[string]string{}, values: map[string]types.AttributeValue{}}
}

// n is the placeholder of attribute name (all of ours are alphanumeric).
func (x *expr) n(name string) string { x.names["#"+name] = name; return "#" + name }

// v is the placeholder of a value.
func (x *expr) v(key string, av types.AttributeValue) string {
	x.values[":"+key] = av
	return ":" + key
}

func (x *expr) valuesOrNil() map[string]types.AttributeValue {
	if len(x.values) == 0 {
		return nil
	}
	return x.values
}

// update builds "SET a = b, ... REMOVE c, ...".
type update struct{ set, remove []string }

func (u *update) String() string {
	var parts []string
	if len(u.set) > 0 {
		parts = append(parts, "SET "+strings.Join(u.set, ", "))
	}
	if len(u.remove) > 0 {
		parts = append(parts, "REMOVE "+strings.Join(u.remove, ", "))
	}
	return strings.Join(parts, " ")
}

// readHead reads the sheet's head with a strongly consistent GetItem.
func (l *Log) readHead(ctx context.Context, what string) (head, error) {
	in := &dynamodb.GetItemInput{TableName: aws.String(l.s.table), Key: headKey(l.sheet), ConsistentRead: aws.Bool(true)}
	out, err := request(ctx, l.s, what, l.s.db.GetItem, in)
	if err != nil {
		return head{}, storageErr(err, what)
	}
	h, err := decodeHead(out.Item)
	if err != nil {
		return head{}, errs.Storage(err, "%s: the head item of sheet %s is corrupt", what, l.sheet)
	}
	return h, nil
}

// readEntry reads one entry item with a strongly consistent GetItem; nil
// when it does not exist.
func (l *Log) readEntry(ctx context.Context, what string, id eventlog.SequenceID) (*decoded, error) {
	in := &dynamodb.GetItemInput{TableName: aws.String(l.s.table), Key: entryKey(l.sheet, id), ConsistentRead: aws.Bool(true)}
	out, err := request(ctx, l.s, what, l.s.db.GetItem, in)
	if err != nil {
		return nil, storageErr(err, what)
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	d, err := decodeEntry(out.Item)
	if err != nil {
		return nil, errs.Storage(err, "%s: entry %d of sheet %s is corrupt", what, id, l.sheet)
	}
	return &d, nil
}

func (l *Log) transact(ctx context.Context, what string, items ...types.TransactWriteItem) (maybeApplied bool, err error) {
	in := &dynamodb.TransactWriteItemsInput{
		TransactItems: items,
		// The same token on every retry of this very request: DynamoDB
		// then applies it at most once, even when a reply was lost.
		ClientRequestToken: aws.String(newToken()),
	}
	return l.s.doWrite(ctx, what, func(ctx context.Context) error {
		_, err := l.s.db.TransactWriteItems(ctx, in, noSDKRetry)
		return err
	})
}

// backoff sleeps before another optimistic round.
func (l *Log) backoff(ctx context.Context, round int, what string) error {
	if err := ctxsleep.Sleep(ctx, l.s.retry.delay(min(round, 4))); err != nil {
		return errs.Storage(err, "%s", what)
	}
	return nil
}

// AddEntry appends e at id: the batch of one entry.
func (l *Log) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

// AddEntries appends entries at id, id+1, ...: a consistent read of the
// head (an early conflict, and the newest snapshot for the reply) and one
// transaction that advances the head's next id from id to id+n and puts
// the n entries, all carrying the append's token. A batch that could not
// be one transaction is refused before anything is sent (checkBatch).
func (l *Log) AddEntries(ctx context.Context, id eventlog.SequenceID, entries []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	const what = "appending to the event log"
	tok := newToken()
	// The transaction's items: the head update (filled in each round),
	// then the entries, in id order.
	items, err := l.entryPuts(id, entries, tok)
	if err != nil {
		return nil, err
	}
	if err := checkCtx(ctx, what); err != nil {
		return nil, err
	}
	n := uint64(len(entries))
	// The newest snapshot the batch carries becomes the log's newest.
	var batchSnap *eventlog.SnapshotRef
	for i, e := range entries {
		if e.Snapshot != "" {
			batchSnap = &eventlog.SnapshotRef{SequenceID: id + eventlog.SequenceID(i), BlobID: e.Snapshot}
		}
	}
	maybe := false // an attempt may have been applied unseen
	var after head // the head as the last transaction sent would leave it
	for round := 0; ; round++ {
		h, err := l.readHead(ctx, what)
		if err != nil {
			return nil, err
		}
		if uint64(id) != h.next {
			if maybe && h.next > uint64(id) {
				mine, err := l.wroteEntry(ctx, what, id, tok, nil)
				if err != nil {
					return nil, err
				}
				if mine {
					return after.lastSnapshot(known), nil
				}
			}
			return nil, errs.Conflict(uint64(id), h.next)
		}
		if h.next > math.MaxUint64-n {
			return nil, errs.Storage(nil, "%s: sheet %s has too few sequence ids left for %d entries", what, l.sheet, n)
		}
		if round >= maxRounds {
			return nil, errs.Storage(nil, "%s: the newest snapshot kept changing during %d attempts", what, round)
		}

		hx := newExpr()
		cond := hx.n(attrNext) + " = " + hx.v("id", num(uint64(id)))
		if id == 0 {
			cond = "(attribute_not_exists(" + hx.n(attrNext) + ") OR " + cond + ")"
		}
		if known != nil {
			// The reply names the newest snapshot at the moment of the
			// append, so the append only commits if it is still the one
			// just read.
			cond += " AND " + snapshotUnchanged(hx, h)
		}
		headUpdate := "SET " + hx.n(attrNext) + " = " + hx.v("next", num(uint64(id)+n)) +
			", " + hx.n(attrFirst) + " = if_not_exists(" + hx.n(attrFirst) + ", " + hx.v("zero", num(0)) + ")"
		after = h
		after.next = uint64(id) + n
		if batchSnap != nil {
			// Moving the pointer bumps the metadata version, like every
			// other change of it: a SetMetadata that read the old pointer
			// must not write over this one.
			headUpdate += ", " + hx.n(attrSnapSeq) + " = " + hx.v("nss", num(uint64(batchSnap.SequenceID))) +
				", " + hx.n(attrSnapBlob) + " = " + hx.v("nsb", str(batchSnap.BlobID)) +
				", " + hx.n(attrMV) + " = if_not_exists(" + hx.n(attrMV) + ", :zero) + " + hx.v("one", num(1))
			after.mv++
			after.hasSnap, after.snapSeq, after.snapBlob = true, uint64(batchSnap.SequenceID), batchSnap.BlobID
		}
		items[0] = types.TransactWriteItem{Update: &types.Update{
			TableName:                           aws.String(l.s.table),
			Key:                                 headKey(l.sheet),
			UpdateExpression:                    aws.String(headUpdate),
			ConditionExpression:                 aws.String(cond),
			ExpressionAttributeNames:            hx.names,
			ExpressionAttributeValues:           hx.valuesOrNil(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}}
		amb, err := l.transact(ctx, what, items...)
		maybe = maybe || amb
		if err == nil {
			return after.lastSnapshot(known), nil
		}
		rs, ok := conditionFailed(err)
		if !ok {
			return nil, storageErr(err, what)
		}
		if reasonFailed(rs, 0) {
			old, derr := decodeHead(reasonItem(rs, 0))
			if derr != nil {
				return nil, errs.Storage(derr, "%s: the head item of sheet %s is corrupt", what, l.sheet)
			}
			if old.next > uint64(id) {
				// Someone appended at id. It may be this call: an
				// earlier attempt whose reply was lost.
				if maybe {
					mine, err := l.wroteEntry(ctx, what, id, tok, rs)
					if err != nil {
						return nil, err
					}
					if mine {
						return after.lastSnapshot(known), nil
					}
				}
				return nil, errs.Conflict(uint64(id), old.next)
			}
			if old.next < uint64(id) || !old.exists && id != 0 {
				return nil, errs.Conflict(uint64(id), old.next)
			}
			// next is still id: only the snapshot changed. Read again.
			continue
		}
		for i := range entries {
			if reasonFailed(rs, 1+i) {
				return nil, errs.Storage(nil, "%s: sheet %s has an entry at %d although its head says the next id is %d", what, l.sheet, uint64(id)+uint64(i), id)
			}
		}
		return nil, storageErr(err, what)
	}
}

// entryPuts checks a batch and builds the transaction items that put
// its entries at id, id+1, ..., each only if no item is there yet, after
// an empty slot for the head update. Everything DynamoDB would refuse is
// refused here, as a ValidationError, before any request: each entry as
// checkEntry says, and a batch whose items would exceed a transaction's
// size limit.
func (l *Log) entryPuts(id eventlog.SequenceID, entries []eventlog.Entry, tok string) ([]types.TransactWriteItem, error) {
	if err := eventlog.ValidateBatch(entries); err != nil {
		return nil, err
	}
	for i, e := range entries {
		if err := checkEntry(e); err != nil {
			return nil, eventlog.BatchEntryError(len(entries), i, err)
		}
	}
	now := l.s.now().UnixMilli()
	// Every put has the same condition; DynamoDB wants the placeholders
	// of each item to be its own, which a shared read-only map is.
	px := newExpr()
	putCond := aws.String("attribute_not_exists(" + px.n(attrSeq) + ")")
	items := make([]types.TransactWriteItem, 1, 1+len(entries))
	size := headMaxBytes
	for i, e := range entries {
		item := entryItem(l.sheet, id+eventlog.SequenceID(i), e, tok, now)
		size += itemSize(item)
		items = append(items, types.TransactWriteItem{Put: &types.Put{
			TableName:                           aws.String(l.s.table),
			Item:                                item,
			ConditionExpression:                 putCond,
			ExpressionAttributeNames:            px.names,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	if size > maxTransactBytes {
		return nil, errs.Validation("a batch of %d entries makes a DynamoDB transaction of about %d bytes; at most %d fit in one: append it in smaller batches",
			len(entries), size, maxTransactBytes)
	}
	return items, nil
}

// snapshotUnchanged is a condition on the head: its newest snapshot is
// still the one h holds, as readers would see it.
func snapshotUnchanged(x *expr, h head) string {
	if !h.hasSnap {
		return "attribute_not_exists(" + x.n(attrSnapSeq) + ")"
	}
	c := x.n(attrSnapSeq) + " = " + x.v("ss", num(h.snapSeq)) + " AND " + x.n(attrSnapBlob) + " = " + x.v("sb", str(h.snapBlob))
	if _, ok := h.snapshot(); ok {
		// Still effective: no truncation has passed it since.
		c += " AND " + x.n(attrFirst) + " <= " + x.v("ss2", num(h.snapSeq))
	}
	return c
}

// wroteEntry reports whether the entry at id was written by the append
// whose token is tok, after an attempt of it may have been applied unseen.
// The cancellation reasons of the transaction carry the entry when its put
// failed; otherwise it is read. An entry that is gone (truncated since)
// leaves the outcome unknown: a StorageError.
func (l *Log) wroteEntry(ctx context.Context, what string, id eventlog.SequenceID, tok string, rs []types.CancellationReason) (bool, error) {
	if it := reasonItem(rs, 1); reasonFailed(rs, 1) && len(it) > 0 {
		if t, _ := getString(it, attrTok); t != "" {
			return t == tok, nil
		}
	}
	d, err := l.readEntry(ctx, what, id)
	if err != nil {
		return false, err
	}
	if d == nil {
		return false, unknownOutcome(what)
	}
	return d.tok == tok, nil
}

// SetMetadata changes metadata of the entry at id: a consistent read of
// the head, then one transaction that bumps the head's metadata version
// (and moves its newest-snapshot pointer when the snapshot field changes)
// and updates the entry, conditioned on the version read.
func (l *Log) SetMetadata(ctx context.Context, id eventlog.SequenceID, u eventlog.MetadataUpdate) (bool, error) {
	const what = "changing event log metadata"
	if err := u.Validate(); err != nil {
		return false, err
	}
	for _, f := range []struct {
		name string
		u    eventlog.FieldUpdate
	}{{"snapshot", u.Snapshot}, {"history", u.History}, {"pending", u.Pending}} {
		if err := checkMetadataValue(f.name, f.u.Value()); err != nil {
			return false, err
		}
	}
	if err := checkCtx(ctx, what); err != nil {
		return false, err
	}
	mtok := newToken()
	// maybe: an attempt may have been applied unseen. Each attempt stamps
	// the entry with the head's version + 1 as read in its round, so an
	// entry whose stamp is at most ambMV, the version read in the first
	// round with such an attempt, was changed by none of them.
	maybe, ambMV := false, uint64(0)
	for round := 0; ; round++ {
		h, err := l.readHead(ctx, what)
		if err != nil {
			return false, err
		}
		if uint64(id) < h.first || uint64(id) >= h.next {
			if maybe {
				return false, unknownOutcome(what)
			}
			return false, errs.Range("sequence id %d is outside the log [%d, %d)", id, h.first, h.next)
		}
		if u.Snapshot.IsKeep() && u.History.IsKeep() && u.Pending.IsKeep() && u.IfPending == "" {
			return true, nil // nothing to change, and the id is in the log
		}
		if round >= maxRounds {
			return false, errs.Storage(nil, "%s: the metadata of sheet %s kept changing during %d attempts", what, l.sheet, round)
		}

		// The head: version, and the newest-snapshot pointer.
		hx := newExpr()
		hu := &update{}
		mv1 := num(h.mv + 1)
		hu.set = append(hu.set, hx.n(attrMV)+" = "+hx.v("mv1", mv1))
		cur, curOK := h.snapshot()
		switch {
		case u.Snapshot.IsSet() && (!curOK || uint64(id) >= uint64(cur.SequenceID)):
			hu.set = append(hu.set, hx.n(attrSnapSeq)+" = "+hx.v("ss", num(uint64(id))), hx.n(attrSnapBlob)+" = "+hx.v("sb", str(u.Snapshot.Value())))
		case u.Snapshot.IsClear() && curOK && cur.SequenceID == id:
			prev, ok, err := l.previousSnapshot(ctx, what, h, id)
			if err != nil {
				return false, err
			}
			if ok {
				hu.set = append(hu.set, hx.n(attrSnapSeq)+" = "+hx.v("ss", num(uint64(prev.SequenceID))), hx.n(attrSnapBlob)+" = "+hx.v("sb", str(prev.BlobID)))
			} else {
				hu.remove = append(hu.remove, hx.n(attrSnapSeq), hx.n(attrSnapBlob))
			}
		}
		hcond := hx.n(attrFirst) + " <= " + hx.v("id", num(uint64(id)))
		if h.mv == 0 {
			hcond += " AND attribute_not_exists(" + hx.n(attrMV) + ")"
		} else {
			hcond += " AND " + hx.n(attrMV) + " = " + hx.v("mv0", num(h.mv))
		}

		// The entry.
		ex := newExpr()
		eu := &update{}
		eu.set = append(eu.set, ex.n(attrMV)+" = "+ex.v("mv1", mv1), ex.n(attrMTok)+" = "+ex.v("mtok", str(mtok)))
		for _, f := range []struct {
			attr string
			u    eventlog.FieldUpdate
		}{{attrSnapshot, u.Snapshot}, {attrHistory, u.History}, {attrPending, u.Pending}} {
			switch {
			case f.u.IsSet():
				eu.set = append(eu.set, ex.n(f.attr)+" = "+ex.v(f.attr, str(f.u.Value())))
			case f.u.IsClear():
				eu.remove = append(eu.remove, ex.n(f.attr))
			}
		}
		// The index keys come and go with pending: the entry is in the
		// sparse index exactly while it is pending.
		switch {
		case u.Pending.IsSet():
			eu.set = append(eu.set, ex.n(attrPendingSince)+" = "+ex.v("since", num(l.s.now().UnixMilli())),
				ex.n(attrPendingShard)+" = "+ex.v("shard", num(pendingShard(l.sheet, id))))
		case u.Pending.IsClear():
			eu.remove = append(eu.remove, ex.n(attrPendingSince), ex.n(attrPendingShard))
		}
		econd := "attribute_exists(" + ex.n(attrSeq) + ")"
		if u.IfPending != "" {
			econd += " AND " + ex.n(attrPending) + " = " + ex.v("ifp", str(u.IfPending))
		}

		amb, err := l.transact(ctx, what,
			types.TransactWriteItem{Update: &types.Update{
				TableName:                           aws.String(l.s.table),
				Key:                                 headKey(l.sheet),
				UpdateExpression:                    aws.String(hu.String()),
				ConditionExpression:                 aws.String(hcond),
				ExpressionAttributeNames:            hx.names,
				ExpressionAttributeValues:           hx.valuesOrNil(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
			types.TransactWriteItem{Update: &types.Update{
				TableName:                           aws.String(l.s.table),
				Key:                                 entryKey(l.sheet, id),
				UpdateExpression:                    aws.String(eu.String()),
				ConditionExpression:                 aws.String(econd),
				ExpressionAttributeNames:            ex.names,
				ExpressionAttributeValues:           ex.valuesOrNil(),
				ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
			}},
		)
		if amb && !maybe {
			maybe, ambMV = true, h.mv
		}
		if err == nil {
			return true, nil
		}
		rs, ok := conditionFailed(err)
		if !ok {
			return false, storageErr(err, what)
		}
		// The entry as the transaction found it, when its condition
		// failed: it shows whether an earlier attempt of this call (reply
		// lost) applied the change, by the token it left.
		var entry *decoded
		if reasonFailed(rs, 1) {
			if it := reasonItem(rs, 1); len(it) > 0 {
				d, err := decodeEntry(it)
				if err != nil {
					return false, errs.Storage(err, "%s: entry %d of sheet %s is corrupt", what, id, l.sheet)
				}
				entry = &d
			}
		} else if maybe {
			if entry, err = l.readEntry(ctx, what, id); err != nil {
				return false, err
			}
		}
		if entry != nil && entry.mtok == mtok {
			return true, nil
		}
		if maybe {
			if entry == nil || entry.mv > ambMV {
				// Applied and then overwritten by another change, or
				// never applied: no way to tell, and either answer could
				// be a lie.
				return false, unknownOutcome(what)
			}
			maybe = false // none of the attempts so far was applied
		}
		if reasonFailed(rs, 0) {
			old, err := decodeHead(reasonItem(rs, 0))
			if err != nil {
				return false, errs.Storage(err, "%s: the head item of sheet %s is corrupt", what, l.sheet)
			}
			if uint64(id) < old.first {
				return false, errs.Range("sequence id %d is outside the log [%d, %d)", id, old.first, old.next)
			}
		}
		if reasonFailed(rs, 1) {
			if entry == nil {
				return false, errs.Range("sequence id %d is no longer in the log", id)
			}
			if u.IfPending != "" && entry.entry.Pending != u.IfPending {
				return false, nil
			}
		}
		// Another metadata change won the head's version: try again.
		if err := l.backoff(ctx, round, what); err != nil {
			return false, err
		}
	}
}

// previousSnapshot finds the newest snapshot below id, reading the log
// backwards from id-1 (only when the newest snapshot is cleared, which
// nothing in the spreadsheet does in normal operation).
func (l *Log) previousSnapshot(ctx context.Context, what string, h head, id eventlog.SequenceID) (eventlog.SnapshotRef, bool, error) {
	if uint64(id) <= h.first {
		return eventlog.SnapshotRef{}, false, nil
	}
	x := newExpr()
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(l.s.table),
		KeyConditionExpression:    aws.String(x.n(attrSheet) + " = " + x.v("sheet", str(l.sheet)) + " AND " + x.n(attrSeq) + " BETWEEN " + x.v("a", num(h.first)) + " AND " + x.v("b", num(uint64(id)-1))),
		FilterExpression:          aws.String("attribute_exists(" + x.n(attrSnapshot) + ")"),
		ProjectionExpression:      aws.String(x.n(attrSeq) + ", " + x.n(attrSnapshot)),
		ExpressionAttributeNames:  x.names,
		ExpressionAttributeValues: x.values,
		ConsistentRead:            aws.Bool(true),
		ScanIndexForward:          aws.Bool(false),
	}
	for {
		res, err := request(ctx, l.s, what, l.s.db.Query, in)
		if err != nil {
			return eventlog.SnapshotRef{}, false, storageErr(err, what)
		}
		if len(res.Items) > 0 {
			seq, err := getInt(res.Items[0], attrSeq)
			blob, _ := getString(res.Items[0], attrSnapshot)
			if err != nil || blob == "" {
				return eventlog.SnapshotRef{}, false, errs.Storage(err, "%s: malformed entry in sheet %s", what, l.sheet)
			}
			return eventlog.SnapshotRef{SequenceID: eventlog.SequenceID(seq), BlobID: blob}, true, nil
		}
		if len(res.LastEvaluatedKey) == 0 {
			return eventlog.SnapshotRef{}, false, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// Query reads the head, then the entries of the requested range, and
// checks that the entries read are exactly the ones the head promised,
// unchanged since: the page then shows the log as it was at the moment the
// head was read. A concurrent truncation or metadata change in the range
// makes it read again.
func (l *Log) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	const what = "querying the event log"
	if err := checkCtx(ctx, what); err != nil {
		return eventlog.Page{}, err
	}
	for round := 0; ; round++ {
		h, err := l.readHead(ctx, what)
		if err != nil {
			return eventlog.Page{}, err
		}
		var start uint64
		if id, ok := from.ID(); ok {
			start = uint64(id)
			if start < h.first || start > h.next {
				return eventlog.Page{}, errs.Range("query start %d is outside the log [%d, %d]", start, h.first, h.next)
			}
		} else if s, ok := h.snapshot(); ok && from.IsSnapshot() {
			start = uint64(s.SequenceID)
		} else {
			start = h.first
		}
		end := h.next
		if t, ok := to.ID(); ok && uint64(t) < end {
			end = uint64(t)
		}
		page := eventlog.Page{Start: eventlog.SequenceID(start), End: eventlog.SequenceID(start), LastSnapshot: h.lastSnapshot(known)}
		if end <= start {
			page.Complete = true
			return page, nil
		}
		entries, pending, ok, err := l.readRange(ctx, what, h, start, end)
		if err != nil {
			return eventlog.Page{}, err
		}
		if ok && len(pending) > 0 {
			if ok, err = l.confirmPending(ctx, what, h, pending); err != nil {
				return eventlog.Page{}, err
			}
		}
		if ok {
			page.Entries = entries
			page.End = eventlog.SequenceID(start + uint64(len(entries)))
			page.Complete = uint64(page.End) == end
			return page, nil
		}
		if round+1 >= maxRounds {
			return eventlog.Page{}, errs.Storage(nil, "%s: sheet %s: entries in [%d, %d) kept changing or are missing", what, l.sheet, start, end)
		}
		if err := l.backoff(ctx, round, what); err != nil {
			return eventlog.Page{}, err
		}
	}
}

// pendingRead is an entry a page holds with pending set, and the mv
// stamp it was read with.
type pendingRead struct{ id, mv uint64 }

// readRange reads entries from start towards end, strongly consistent,
// following LastEvaluatedKey across DynamoDB's 1 MB pages, until the page
// bounds. It reports false when what it read is not what h promised: an
// id missing (truncated since) or an entry whose metadata changed after h
// was read (its mv stamp is newer than h's). It also returns the entries
// read with pending set, for confirmPending.
func (l *Log) readRange(ctx context.Context, what string, h head, start, end uint64) ([]eventlog.Entry, []pendingRead, bool, error) {
	var (
		out     []eventlog.Entry
		pending []pendingRead
		bytes   int
		esk     map[string]types.AttributeValue
	)
	for {
		want := min(end-start-uint64(len(out)), uint64(l.s.pageN-len(out)))
		x := newExpr()
		in := &dynamodb.QueryInput{
			TableName:                 aws.String(l.s.table),
			KeyConditionExpression:    aws.String(x.n(attrSheet) + " = " + x.v("sheet", str(l.sheet)) + " AND " + x.n(attrSeq) + " BETWEEN " + x.v("a", num(start)) + " AND " + x.v("b", num(end-1))),
			ExpressionAttributeNames:  x.names,
			ExpressionAttributeValues: x.values,
			ConsistentRead:            aws.Bool(true),
			Limit:                     aws.Int32(int32(min(want, 1<<30))),
			ExclusiveStartKey:         esk,
		}
		res, err := request(ctx, l.s, what, l.s.db.Query, in)
		if err != nil {
			return nil, nil, false, storageErr(err, what)
		}
		for _, it := range res.Items {
			d, err := decodeEntry(it)
			if err != nil {
				return nil, nil, false, errs.Storage(err, "%s: malformed entry in sheet %s", what, l.sheet)
			}
			if uint64(d.id) != start+uint64(len(out)) || d.mv > h.mv {
				return nil, nil, false, nil
			}
			if len(out) > 0 && bytes+len(d.entry.Body) > l.s.pageBytes {
				return out, pending, true, nil
			}
			out = append(out, d.entry)
			if d.entry.Pending != "" {
				pending = append(pending, pendingRead{uint64(d.id), d.mv})
			}
			bytes += len(d.entry.Body)
			if len(out) >= l.s.pageN {
				return out, pending, true, nil
			}
		}
		if start+uint64(len(out)) == end {
			return out, pending, true, nil
		}
		if len(res.LastEvaluatedKey) == 0 {
			return nil, nil, false, nil
		}
		esk = res.LastEvaluatedKey
	}
}

// maxTransactGet is the most items one TransactGetItems reads.
const maxTransactGet = 100

// confirmPending closes the one gap the mv check leaves. GetItem and
// Query are read-committed, not a snapshot across items: a reader can see
// the head as a transaction left it and an entry of that transaction as
// it was before (AWS: use TransactGetItems to see a transaction's items
// together). The mv check catches an entry newer than the head; this
// catches an entry older than the head. The only metadata change the
// engine makes is completing a workflow, which changes an entry that shows
// pending: those entries are read again together with the head in
// TransactGetItems, which is serializable with every transaction, and the
// page stands only if the head's mv is still the one read and each entry
// still carries the mv it was read with. If a completion had reached the
// head before the head read but not the entry before the Query, the
// transactional read sees either the entry changed or (serialized before
// the completion) an older head: either way the page is read again.
// Pages without pending entries cost nothing more; see docs/dynamodb.md
// for what this costs and what it does not cover.
func (l *Log) confirmPending(ctx context.Context, what string, h head, pending []pendingRead) (bool, error) {
	for len(pending) > 0 {
		chunk := pending[:min(len(pending), maxTransactGet-1)]
		pending = pending[len(chunk):]
		x := newExpr()
		proj := aws.String(x.n(attrSeq) + ", " + x.n(attrMV))
		items := []types.TransactGetItem{{Get: &types.Get{TableName: aws.String(l.s.table), Key: headKey(l.sheet),
			ProjectionExpression: proj, ExpressionAttributeNames: x.names}}}
		for _, p := range chunk {
			items = append(items, types.TransactGetItem{Get: &types.Get{TableName: aws.String(l.s.table),
				Key: entryKey(l.sheet, eventlog.SequenceID(p.id)), ProjectionExpression: proj, ExpressionAttributeNames: x.names}})
		}
		res, err := request(ctx, l.s, what, l.s.db.TransactGetItems, &dynamodb.TransactGetItemsInput{TransactItems: items})
		if err != nil {
			return false, storageErr(err, what)
		}
		if len(res.Responses) != len(items) {
			return false, errs.Storage(nil, "%s: TransactGetItems answered %d items for %d", what, len(res.Responses), len(items))
		}
		mv := func(it map[string]types.AttributeValue) (uint64, bool) {
			if len(it) == 0 {
				return 0, false
			}
			if _, ok := it[attrMV]; !ok {
				return 0, true
			}
			n, err := getInt(it, attrMV)
			return uint64(n), err == nil
		}
		if got, ok := mv(res.Responses[0].Item); !ok || got != h.mv {
			return false, nil
		}
		for i, p := range chunk {
			if got, ok := mv(res.Responses[i+1].Item); !ok || got != p.mv {
				return false, nil
			}
		}
	}
	return true, nil
}

// Truncate reads the head (range check), moves its first id to start
// with an update conditioned on first being unchanged (from then on no
// reader sees the entries below it), then deletes the items below start,
// including any left over by an earlier truncation whose cleanup failed.
func (l *Log) Truncate(ctx context.Context, start eventlog.SequenceID) error {
	const what = "truncating the event log"
	if err := checkCtx(ctx, what); err != nil {
		return err
	}
	maybe := false // an attempt may have been applied unseen
	for round := 0; ; round++ {
		h, err := l.readHead(ctx, what)
		if err != nil {
			return err
		}
		if uint64(start) < h.first || uint64(start) > h.next {
			if maybe {
				// Ours may have been applied, then passed by another.
				return unknownOutcome(what)
			}
			return errs.Range("cannot truncate at %d: the log holds [%d, %d)", start, h.first, h.next)
		}
		if !h.exists || uint64(start) == h.first {
			break // nothing moves
		}
		if round >= maxRounds {
			return errs.Storage(nil, "%s: sheet %s kept being truncated during %d attempts", what, l.sheet, round)
		}
		x := newExpr()
		in := &dynamodb.UpdateItemInput{
			TableName:                           aws.String(l.s.table),
			Key:                                 headKey(l.sheet),
			UpdateExpression:                    aws.String("SET " + x.n(attrFirst) + " = " + x.v("start", num(uint64(start)))),
			ConditionExpression:                 aws.String(x.n(attrFirst) + " = " + x.v("first0", num(h.first))),
			ExpressionAttributeNames:            x.names,
			ExpressionAttributeValues:           x.values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}
		amb, err := l.s.doWrite(ctx, what, func(ctx context.Context) error {
			_, err := l.s.db.UpdateItem(ctx, in, noSDKRetry)
			return err
		})
		maybe = maybe || amb
		if err == nil {
			break
		}
		var ccf *types.ConditionalCheckFailedException
		if !errors.As(err, &ccf) {
			return storageErr(err, what)
		}
		old, derr := decodeHead(ccf.Item)
		if derr != nil {
			return errs.Storage(derr, "%s: the head item of sheet %s is corrupt", what, l.sheet)
		}
		if old.first == uint64(start) {
			// Ours (an attempt whose reply was lost), or another
			// truncation to the same point: the log is as asked either
			// way, and start is in range, so success is a true answer.
			break
		}
		if maybe {
			return unknownOutcome(what)
		}
		// Another truncation moved first meanwhile: check the range again.
		if err := l.backoff(ctx, round, what); err != nil {
			return err
		}
	}
	if err := l.deleteBelow(ctx, uint64(start)); err != nil {
		// The truncation itself is done and durable: nobody sees the
		// leftovers, and the next Truncate deletes them.
		l.s.log.Warn("dynamodb: truncated entries not yet deleted", "sheet", l.sheet, "below", uint64(start), "err", err)
	}
	return nil
}

// deleteBelow deletes every entry item with an id below start.
func (l *Log) deleteBelow(ctx context.Context, start uint64) error {
	const what = "deleting truncated entries"
	if start == 0 {
		return nil
	}
	x := newExpr()
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(l.s.table),
		KeyConditionExpression:    aws.String(x.n(attrSheet) + " = " + x.v("sheet", str(l.sheet)) + " AND " + x.n(attrSeq) + " BETWEEN " + x.v("a", num(0)) + " AND " + x.v("b", num(start-1))),
		ProjectionExpression:      aws.String(x.n(attrSheet) + ", " + x.n(attrSeq)),
		ExpressionAttributeNames:  x.names,
		ExpressionAttributeValues: x.values,
		ConsistentRead:            aws.Bool(true),
	}
	for {
		res, err := request(ctx, l.s, what, l.s.db.Query, in)
		if err != nil {
			return err
		}
		for i := 0; i < len(res.Items); i += 25 {
			var reqs []types.WriteRequest
			for _, it := range res.Items[i:min(i+25, len(res.Items))] {
				reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: it}})
			}
			if err := l.batchWrite(ctx, what, reqs); err != nil {
				return err
			}
		}
		if len(res.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// batchWrite sends reqs, re-sending unprocessed ones with backoff.
func (l *Log) batchWrite(ctx context.Context, what string, reqs []types.WriteRequest) error {
	for round := 0; len(reqs) > 0; round++ {
		if round >= l.s.retry.MaxAttempts {
			return errs.Storage(nil, "%s: %d requests still unprocessed after %d rounds", what, len(reqs), round)
		}
		if round > 0 {
			if err := l.backoff(ctx, round, what); err != nil {
				return err
			}
		}
		in := &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{l.s.table: reqs}}
		res, err := request(ctx, l.s, what, l.s.db.BatchWriteItem, in)
		if err != nil {
			return err
		}
		reqs = res.UnprocessedItems[l.s.table]
	}
	return nil
}
