// Package dynamo is the event log (pkg/eventlog) on one DynamoDB table
// shared by every sheet, laid out as awsschema.EventLogTable says.
//
// Each sheet has a head item (sort key -1) beside its entries (sort key =
// sequence id). An append is one transaction over the head and the 1 to 99
// entries it adds (AddEntry is a batch of one), a metadata change one over
// the head and one entry; reads validate what they return against the
// head. Why
// this gives dense ids, linearizable reads and what each operation costs
// is in docs/dynamodb.md.
package dynamo

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// API is the part of the DynamoDB client the store uses.
type API interface {
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	TransactWriteItems(context.Context, *dynamodb.TransactWriteItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	TransactGetItems(context.Context, *dynamodb.TransactGetItemsInput, ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error)
	BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
}

// Default page bounds of Query.
const (
	DefaultPageEntries = 1000
	DefaultPageBytes   = 2 << 20
)

// Options tune a Store. The zero value is the defaults.
type Options struct {
	// PageEntries and PageBytes bound one Query page: at most PageEntries
	// entries, and at most PageBytes bytes of bodies unless the page holds
	// a single entry. Defaults DefaultPageEntries and DefaultPageBytes.
	// A page may span several DynamoDB Query calls (each reads at most
	// 1 MB).
	PageEntries int
	PageBytes   int
	// Retry is the policy for throttling and transient errors
	// (DefaultRetry when MaxAttempts is 0).
	Retry Retry
	// Logger receives retries and cleanup failures (slog.Default()).
	Logger *slog.Logger
	// Now is the clock of pendingSince (time.Now).
	Now func() time.Time
}

// Store is the event log of every sheet in one table.
type Store struct {
	db        API
	table     string
	pageN     int
	pageBytes int
	retry     Retry
	log       *slog.Logger
	now       func() time.Time
}

// New returns the store of the event log table named table.
func New(db API, table string, o Options) *Store {
	s := &Store{db: db, table: table, pageN: o.PageEntries, pageBytes: o.PageBytes, retry: o.Retry, log: o.Logger, now: o.Now}
	if s.pageN <= 0 {
		s.pageN = DefaultPageEntries
	}
	if s.pageBytes <= 0 {
		s.pageBytes = DefaultPageBytes
	}
	if s.retry.MaxAttempts <= 0 {
		s.retry = DefaultRetry
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// Table is the table's name.
func (s *Store) Table() string { return s.table }

// Log returns the log of sheet, after checking the id.
func (s *Store) Log(sheet string) (eventlog.EventLog, error) {
	l, err := s.SheetLog(sheet)
	if err != nil {
		return nil, err
	}
	return l, nil
}

// SheetLog is Log with the concrete type.
func (s *Store) SheetLog(sheet string) (*Log, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	return &Log{s: s, sheet: sheet}, nil
}

var _ eventlog.Store = (*Store)(nil)

// Pending lists every entry of every sheet whose pending field is set
// (what a worker pool re-sends at start-up). See PendingBefore.
func (s *Store) Pending(ctx context.Context) ([]eventlog.PendingEntry, error) {
	return s.pending(ctx, nil)
}

// PendingBefore lists the entries of every sheet whose pending field was
// set before olderThan: what the sweeper runs again. It reads the sparse
// pending index (awsschema.PendingIndexName), which holds only the items
// that have pending set, so its cost follows the number of outstanding
// workflows, never the size of the logs: one Query per shard
// (awsschema.PendingShards), each reading only the entries older than
// olderThan (the index's sort key), plus one per further 1 MB page. The
// index is eventually consistent: an entry completed a moment ago may
// still be listed (workflows are idempotent, so running it again is
// harmless) and one requested a moment ago may be missing (it is younger
// than any sane grace period anyway).
func (s *Store) PendingBefore(ctx context.Context, olderThan time.Time) ([]eventlog.PendingEntry, error) {
	return s.pending(ctx, &olderThan)
}

func (s *Store) pending(ctx context.Context, olderThan *time.Time) ([]eventlog.PendingEntry, error) {
	// The shards are queried at once: the sweeper waits for one Query's
	// latency, not for PendingShards of them in a row.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	found := make([][]eventlog.PendingEntry, awsschema.PendingShards)
	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		failed   error // the first failure, not the cancellations it caused
	)
	for shard := range awsschema.PendingShards {
		wg.Go(func() {
			var err error
			if found[shard], err = s.pendingShard(ctx, shard, olderThan); err != nil {
				failOnce.Do(func() { failed = err; cancel() })
			}
		})
	}
	wg.Wait()
	if failed != nil {
		return nil, failed
	}
	var out []eventlog.PendingEntry
	for _, f := range found {
		out = append(out, f...)
	}
	return out, nil
}

// pendingShard lists one shard of the pending index, page after page.
func (s *Store) pendingShard(ctx context.Context, shard int, olderThan *time.Time) ([]eventlog.PendingEntry, error) {
	const what = "listing pending entries"
	x := newExpr()
	cond := x.n(attrPendingShard) + " = " + x.v("shard", num(shard))
	if olderThan != nil {
		cond += " AND " + x.n(attrPendingSince) + " < " + x.v("t", num(olderThan.UnixMilli()))
	}
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.table),
		IndexName:                 aws.String(awsschema.PendingIndexName),
		KeyConditionExpression:    aws.String(cond),
		ExpressionAttributeNames:  x.names,
		ExpressionAttributeValues: x.values,
	}
	var out []eventlog.PendingEntry
	for {
		res, err := request(ctx, s, what, s.db.Query, in)
		if err != nil {
			return nil, storageErr(err, what)
		}
		for _, it := range res.Items {
			sheet, _ := getString(it, attrSheet)
			wf, _ := getString(it, attrPending)
			seq, err1 := getInt(it, attrSeq)
			since, err2 := getInt(it, attrPendingSince)
			if sheet == "" || wf == "" || err1 != nil || err2 != nil || seq < 0 {
				s.log.Warn("dynamodb: malformed item in the pending index", "item", it)
				continue
			}
			out = append(out, eventlog.PendingEntry{Sheet: sheet, SequenceID: eventlog.SequenceID(seq), Workflow: wf, Since: time.UnixMilli(since)})
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

// checkCtx fails fast, with nothing written, on a done context.
func checkCtx(ctx context.Context, what string) error {
	if err := ctx.Err(); err != nil {
		return errs.Storage(err, "%s", what)
	}
	return nil
}
