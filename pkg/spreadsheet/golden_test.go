package spreadsheet

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

type snapshotVector struct {
	Entries     []json.RawMessage          `json:"entries"`
	SnapshotAt  eventlog.SequenceID        `json:"snapshotAt"`
	Blobs       map[string]json.RawMessage `json:"blobs"`
	AbsentBlobs []string                   `json:"absentBlobs"`
}

func loadVector(t *testing.T, name string) snapshotVector {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v snapshotVector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// readPath reads a blob by its "/"-separated path under root.
func readPath(ctx context.Context, root blobstore.BlobDir, path string) ([]byte, error) {
	parts := strings.Split(path, "/")
	dir := root
	for _, p := range parts[:len(parts)-1] {
		var err error
		if dir, err = dir.GetDir(ctx, p); err != nil {
			return nil, err
		}
	}
	return dir.ReadBlob(ctx, parts[len(parts)-1])
}

func jsonEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", what, err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s =\n %s\nwant\n %s", what, got, want)
	}
}

func TestGoldenSnapshots(t *testing.T) {
	for _, name := range []string{"snapshot-example.json", "snapshot-tiles.json"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			v := loadVector(t, name)
			r := newRig(t, Options{})
			for i, body := range v.Entries {
				if _, err := r.log.AddEntry(ctx, eventlog.SequenceID(i), eventlog.Entry{Body: body}, nil); err != nil {
					t.Fatal(err)
				}
			}
			if got := eventlog.SequenceID(len(v.Entries)); got != v.SnapshotAt {
				t.Fatalf("vector has %d entries, snapshot at %d", got, v.SnapshotAt)
			}
			// The entry at snapshotAt requests the snapshot; its own
			// content is not part of it.
			req := eventlog.Entry{Body: []byte(`{"type":"SetCellValueAndFormat","row":7,"column":7,"value":"after"}`)}
			req.Pending = eventlog.WorkflowSnapshot
			if _, err := r.log.AddEntry(ctx, v.SnapshotAt, req, nil); err != nil {
				t.Fatal(err)
			}
			if err := r.worker.RunSnapshot(ctx, v.SnapshotAt); err != nil {
				t.Fatal(err)
			}
			for path, want := range v.Blobs {
				got, err := readPath(ctx, r.root, path)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				jsonEqual(t, path, got, want)
			}
			for _, path := range v.AbsentBlobs {
				_, err := readPath(ctx, r.root, path)
				var se *errs.StorageError
				if !errors.As(err, &se) || se.Status() != 404 {
					t.Errorf("%s: got %v, want a 404 StorageError", path, err)
				}
			}
			// Nothing but the expected blobs under the snapshot.
			var want []string
			for p := range v.Blobs {
				want = append(want, p)
			}
			got := walk(t, r.root, "")
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("blobs = %v, want %v", got, want)
			}
			page, err := r.log.Query(ctx, eventlog.FromID(v.SnapshotAt), eventlog.ToID(v.SnapshotAt+1), nil)
			if err != nil {
				t.Fatal(err)
			}
			if m := page.Entries[0].Metadata; m.Pending != "" || m.Snapshot != "5" && m.Snapshot != "4" {
				t.Errorf("metadata after completion = %+v", m)
			}
		})
	}
}

// walk lists every blob path under dir, sorted.
func walk(t testing.TB, dir blobstore.BlobDir, prefix string) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	token := ""
	for {
		page, err := dir.Query(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Blobs {
			out = append(out, prefix+b)
		}
		for _, d := range page.Dirs {
			sub, err := dir.GetDir(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, walk(t, sub, prefix+d+"/")...)
		}
		if page.Continuation == "" {
			break
		}
		token = page.Continuation
	}
	sort.Strings(out)
	return out
}
