package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

// Dir is a directory of a sheet's blobs over the API: a
// blobstore.BlobDir that reads and lists, and refuses every write
// (ErrReadOnly).
type Dir struct {
	c     *Client
	sheet string
	path  []string // names from the sheet's root
}

var _ blobstore.BlobDir = (*Dir)(nil)

// Blobs returns the root directory of sheet's blobs. The sheet id is
// checked on each call (a *errs.ValidationError).
func (c *Client) Blobs(sheet string) *Dir { return &Dir{c: c, sheet: sheet} }

// BlobStore is the client as a blobstore.Store.
func (c *Client) BlobStore() blobstore.Store { return blobStore{c} }

type blobStore struct{ c *Client }

func (s blobStore) Sheet(sheet string) (blobstore.BlobDir, error) {
	if err := sheetid.Validate(sheet); err != nil {
		return nil, err
	}
	return s.c.Blobs(sheet), nil
}

// Path is the directory's path from the sheet's root ("" for the root).
func (d *Dir) Path() string { return strings.Join(d.path, "/") }

// blobPath is the escaped API path of name in d, or of d itself (with a
// trailing slash, a listing) when name is "".
func (d *Dir) blobPath(name string) string {
	var b strings.Builder
	b.WriteString(sheetPath(d.sheet))
	b.WriteString("/blobs/")
	for _, n := range d.path {
		b.WriteString(url.PathEscape(n))
		b.WriteByte('/')
	}
	b.WriteString(url.PathEscape(name))
	return b.String()
}

func (d *Dir) check(name string) error {
	if err := sheetid.Validate(d.sheet); err != nil {
		return err
	}
	// The API refuses names it cannot address on every deployment
	// (blobstore.APIUnaddressable): refused here, before any request.
	return blobstore.ValidateAPIName(name)
}

// ReadBlob implements blobstore.BlobDir.
func (d *Dir) ReadBlob(ctx context.Context, name string) ([]byte, error) {
	if err := d.check(name); err != nil {
		return nil, err
	}
	r, err := d.c.do(ctx, request{method: http.MethodGet, path: d.blobPath(name)})
	if err != nil {
		return nil, err
	}
	return r.body, nil
}

// GetDir implements blobstore.BlobDir. Directories exist on demand, but
// a name that is a blob is not one: GetDir asks the server (a HEAD of the
// name, which sends no bytes back) and fails with
// *errs.BlobWrongKindError when it is a blob.
func (d *Dir) GetDir(ctx context.Context, name string) (blobstore.BlobDir, error) {
	if err := d.check(name); err != nil {
		return nil, err
	}
	_, err := d.c.do(ctx, request{method: http.MethodHead, path: d.blobPath(name)})
	switch {
	case err == nil:
		return nil, errs.WrongKind(name, false)
	case headStatus(err) == http.StatusConflict || headStatus(err) == http.StatusNotFound:
		// A directory, or nothing yet. A reply to HEAD has no body, so
		// a 409 cannot say which name was of the wrong kind: an
		// ancestor that became a blob shows when the handle is used.
	default:
		return nil, err
	}
	sub := &Dir{c: d.c, sheet: d.sheet, path: append(append(make([]string, 0, len(d.path)+1), d.path...), name)}
	return sub, nil
}

// headStatus is the status of a failed HEAD, whose reply has no body to
// decode.
func headStatus(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	var se *errs.StorageError
	if errors.As(err, &se) {
		return se.StatusCode
	}
	return 0
}

// Query implements blobstore.BlobDir: one page of the listing.
func (d *Dir) Query(ctx context.Context, continuation string) (blobstore.Page, error) {
	if err := sheetid.Validate(d.sheet); err != nil {
		return blobstore.Page{}, err
	}
	rq := request{method: http.MethodGet, path: d.blobPath("")}
	if continuation != "" {
		rq.query = url.Values{"continuation": {continuation}}
	}
	r, err := d.c.do(ctx, rq)
	if err != nil {
		return blobstore.Page{}, err
	}
	var w struct {
		Blobs        []string `json:"blobs"`
		Dirs         []string `json:"dirs"`
		Continuation string   `json:"continuation"`
	}
	if err := json.Unmarshal(r.body, &w); err != nil {
		return blobstore.Page{}, errs.Storage(err, "the API returned a blob listing that is not valid JSON")
	}
	return blobstore.Page{Blobs: w.Blobs, Dirs: w.Dirs, Continuation: w.Continuation}, nil
}

// WriteBlob implements blobstore.BlobDir: a thin client never writes
// blobs, so it fails with ErrReadOnly and sends nothing.
func (d *Dir) WriteBlob(context.Context, string, []byte) error { return readOnly("WriteBlob") }

// RemoveBlob implements blobstore.BlobDir: refused (ErrReadOnly).
func (d *Dir) RemoveBlob(context.Context, string) error { return readOnly("RemoveBlob") }

// RemoveAll implements blobstore.BlobDir: refused (ErrReadOnly).
func (d *Dir) RemoveAll(context.Context) error { return readOnly("RemoveAll") }
