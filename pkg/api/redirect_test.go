package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	blobmem "github.com/sheetlog/sheetlog/pkg/blobstore/memory"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	logmem "github.com/sheetlog/sheetlog/pkg/eventlog/memory"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// urlStore is a memory blob store whose directories can hand out URLs,
// as S3's presigned ones.
type urlStore struct{ *blobmem.Store }

func (s urlStore) Sheet(sheet string) (blobstore.BlobDir, error) {
	d, err := s.Store.Sheet(sheet)
	return urlDir{d}, err
}

type urlDir struct{ blobstore.BlobDir }

func (d urlDir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	sub, err := d.BlobDir.GetDir(ctx, name)
	return urlDir{sub}, err
}

func (d urlDir) ReadBlobOrURL(ctx context.Context, name string, maxBytes int64) ([]byte, *blobstore.BlobURL, error) {
	b, err := d.ReadBlob(ctx, name)
	if err != nil || int64(len(b)) <= maxBytes {
		return b, nil, err
	}
	return nil, &blobstore.BlobURL{URL: "https://blobs.example/" + name + "?signed", Size: int64(len(b)), Expires: time.Now().Add(time.Minute)}, nil
}

// A blob over MaxInlineBlobBytes is answered 307 with the store's URL, a
// smaller one with its bytes; without the bound, or with a store that has
// no URLs, every blob is inline.
func TestLargeBlobRedirect(t *testing.T) {
	for _, c := range []struct {
		name    string
		blobs   blobstore.Store
		max     int64
		inlined bool
	}{
		{"bounded", urlStore{blobmem.New(blobmem.Options{})}, 10, false},
		{"unbounded", urlStore{blobmem.New(blobmem.Options{})}, 0, true},
		{"store without URLs", blobmem.New(blobmem.Options{}), 10, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			root, _ := c.blobs.Sheet("s")
			dir, _ := root.GetDir(context.Background(), "1")
			for name, data := range map[string]string{"small": "0123456789", "big": "0123456789A"} {
				if err := dir.WriteBlob(context.Background(), name, []byte(data)); err != nil {
					t.Fatal(err)
				}
			}
			engines := enginecache.New(func(string) (*spreadsheet.Engine, error) { return nil, errors.New("no engines here") }, enginecache.Options{})
			h, err := New(Config{Logs: logmem.NewStore(logmem.Options{}), Blobs: c.blobs, Engines: engines, MaxInlineBlobBytes: c.max})
			if err != nil {
				t.Fatal(err)
			}
			get := func(path string) *httptest.ResponseRecorder {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
				return w
			}
			if w := get("/v1/sheets/s/blobs/1/small"); w.Code != 200 || w.Body.String() != "0123456789" {
				t.Errorf("small blob: %d %q", w.Code, w.Body)
			}
			w := get("/v1/sheets/s/blobs/1/big")
			switch {
			case c.inlined && (w.Code != 200 || w.Body.String() != "0123456789A"):
				t.Errorf("big blob inline: %d %q", w.Code, w.Body)
			case !c.inlined && (w.Code != http.StatusTemporaryRedirect || w.Header().Get("Location") != "https://blobs.example/big?signed" ||
				w.Body.Len() != 0 || w.Header().Get("Cache-Control") != "no-store"):
				t.Errorf("big blob: %d, Location %q, Cache-Control %q, body %q", w.Code, w.Header().Get("Location"),
					w.Header().Get("Cache-Control"), w.Body)
			}
			if w := get("/v1/sheets/s/blobs/1/missing"); w.Code != 404 {
				t.Errorf("missing blob: %d", w.Code)
			}
		})
	}
}
