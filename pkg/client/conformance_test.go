package client_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sheetlog/sheetlog/internal/apitest"
	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/blobstoretest"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/eventlog/eventlogtest"
)

// splitLog is the log under test in the event log suite: every read and
// every append of plain entries goes through the client (over HTTP, to
// the real handler, to the bbolt log), and what a thin client cannot do
// by design (metadata writes, truncation, appends of entries that carry
// metadata) goes straight to the same bbolt log, as the server's own
// engines and workers would. So the suite's reads see logs with
// snapshots, pending workflows and truncated starts, all through the
// client. TestReadOnly checks that the client itself refuses those
// calls.
//
// A snapshot the suite names is given an empty snapshot's index in the
// blob store, as a worker would have written one, because the server's
// engine loads the newest snapshot when it (re)loads the sheet.
type splitLog struct {
	thin   *client.Log
	direct eventlog.EventLog
	blobs  blobstore.BlobDir
}

const emptyIndex = `{"rowCount":0,"colCount":0,"tileFormat":{"type":"grid","tileWidth":100,"tileHeight":100}}`

func (l splitLog) placeholder(ctx context.Context, blobID string) error {
	if blobstore.ValidateName(blobID) != nil {
		return nil // not a snapshot the engine could ever read
	}
	d, err := l.blobs.GetDir(ctx, blobID)
	if err != nil {
		return err
	}
	return d.WriteBlob(ctx, "index", []byte(emptyIndex))
}

func hasMetadata(es []eventlog.Entry) bool {
	for _, e := range es {
		if e.Metadata != (eventlog.Metadata{}) {
			return true
		}
	}
	return false
}

func (l splitLog) AddEntry(ctx context.Context, id eventlog.SequenceID, e eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	return l.AddEntries(ctx, id, []eventlog.Entry{e}, known)
}

func (l splitLog) AddEntries(ctx context.Context, id eventlog.SequenceID, es []eventlog.Entry, known *eventlog.SequenceID) (*eventlog.SnapshotRef, error) {
	if hasMetadata(es) {
		for _, e := range es {
			if err := l.placeholder(ctx, e.Snapshot); err != nil {
				return nil, err
			}
		}
		return l.direct.AddEntries(ctx, id, es, known)
	}
	return l.thin.AddEntries(ctx, id, es, known)
}

func (l splitLog) SetMetadata(ctx context.Context, id eventlog.SequenceID, u eventlog.MetadataUpdate) (bool, error) {
	if u.Snapshot.IsSet() && ctx.Err() == nil {
		if err := l.placeholder(ctx, u.Snapshot.Value()); err != nil {
			return false, err
		}
	}
	return l.direct.SetMetadata(ctx, id, u)
}

func (l splitLog) Query(ctx context.Context, from eventlog.From, to eventlog.To, known *eventlog.SequenceID) (eventlog.Page, error) {
	return l.thin.Query(ctx, from, to, known)
}

func (l splitLog) Truncate(ctx context.Context, start eventlog.SequenceID) error {
	return l.direct.Truncate(ctx, start)
}

// TestEventLogConformance runs the event log suite against the client.
// Left out: BodyRoundTrip (bodies of any shape; the API takes only
// spreadsheet entries and stores them canonically), Property (it draws
// such bodies), and the checks of an append's lastSnapshot after
// snapshots were cleared behind the server's engine (see below). The large entries are 12 KiB, so that a batch of four
// fits in the API's 64 KiB request.
func TestEventLogConformance(t *testing.T) {
	s := apitest.New(t, apitest.Options{PageSize: 40, PageBytes: 64 << 10})
	c := s.Client(t)
	var n atomic.Int64
	eventlogtest.Run(t, func(t *testing.T) eventlog.EventLog {
		sheet := fmt.Sprintf("s%d", n.Add(1))
		return split(t, s, c, sheet)
	},
		eventlogtest.Skip("BodyRoundTrip", "Property",
			// The API's reply to an append takes lastSnapshot from the
			// server's engine, which keeps the newest snapshot it has
			// seen: it cannot learn from the log that snapshots were
			// cleared, or truncated away, behind its back (only this
			// test does that; the engine never clears a snapshot). The
			// histories of Linearizability clear snapshots too.
			"LastSnapshot/NewestCleared", "LastSnapshot/AfterTruncation", "Linearizability"),
		eventlogtest.LargeEntryBytes(12<<10),
		eventlogtest.Appenders(8, 60),
		eventlogtest.Batches(20, 2, 30),
		eventlogtest.PageLimits(40, 64<<10),
	)
}

func split(t *testing.T, s *apitest.Server, c *client.Client, sheet string) splitLog {
	t.Helper()
	direct, err := s.Logs.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := s.Blobs.Sheet(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return splitLog{thin: c.Log(sheet), direct: direct, blobs: blobs}
}

// TestLogStore runs the store checks (sheet ids, one log per sheet,
// independent sheets) against the client as an eventlog.Store; truncation
// there goes to the bbolt log, as above.
func TestLogStore(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	eventlogtest.RunStore(t, splitStore{c: s.Client(t), s: s})
}

type splitStore struct {
	c *client.Client
	s *apitest.Server
}

func (st splitStore) Log(sheet string) (eventlog.EventLog, error) {
	thin, err := st.c.LogStore().Log(sheet)
	if err != nil {
		return nil, err
	}
	direct, err := st.s.Logs.Log(sheet)
	if err != nil {
		return nil, err
	}
	blobs, err := st.s.Blobs.Sheet(sheet)
	if err != nil {
		return nil, err
	}
	return splitLog{thin: thin.(*client.Log), direct: direct, blobs: blobs}, nil
}

// splitBlobs is the store under test in the blob store suite: every read
// (ReadBlob, Query, GetDir) goes through the client, every write
// (WriteBlob, RemoveBlob, RemoveAll) straight to the filesystem store
// the server reads, as the server's snapshot workers write it. The whole
// suite then checks the client's reads against every state the suite
// builds.
type splitBlobs struct {
	thin   blobstore.Store
	direct blobstore.Store
}

func (s splitBlobs) Sheet(sheet string) (blobstore.BlobDir, error) {
	thin, err := s.thin.Sheet(sheet)
	if err != nil {
		return nil, err
	}
	direct, err := s.direct.Sheet(sheet)
	if err != nil {
		return nil, err
	}
	return splitDir{thin: thin, direct: direct}, nil
}

type splitDir struct {
	thin, direct blobstore.BlobDir
}

func (d splitDir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	return d.thin.ReadBlob(ctx, name)
}

func (d splitDir) Query(ctx context.Context, continuation string) (blobstore.Page, error) {
	return d.thin.Query(ctx, continuation)
}

func (d splitDir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	thin, err := d.thin.GetDir(ctx, name)
	if err != nil {
		return nil, err
	}
	direct, err := d.direct.GetDir(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("the client's GetDir(%q) succeeded where the store's failed: %w", name, err)
	}
	return splitDir{thin: thin, direct: direct}, nil
}

func (d splitDir) WriteBlob(ctx context.Context, name string, data []byte) error {
	return d.direct.WriteBlob(ctx, name, data)
}

func (d splitDir) RemoveBlob(ctx context.Context, name string) error {
	return d.direct.RemoveBlob(ctx, name)
}

func (d splitDir) RemoveAll(ctx context.Context) error { return d.direct.RemoveAll(ctx) }

// TestBlobStoreConformance runs the blob store suite with every read
// through the client, on a server whose listings hold 3 names a page.
func TestBlobStoreConformance(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstore.Store {
		s := apitest.New(t, apitest.Options{BlobPageSize: 3})
		return splitBlobs{thin: s.Client(t).BlobStore(), direct: s.Blobs}
	}, blobstoretest.Options{PageSize: 3, Unaddressable: func(n string) bool {
		return strings.ContainsAny(n, blobstore.APIUnaddressable)
	}})
}
