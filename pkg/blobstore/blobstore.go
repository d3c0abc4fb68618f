// Package blobstore defines the blob store contract: byte blobs in a tree
// of directories, one root directory per spreadsheet, listed in pages with
// opaque continuation tokens.
//
// Implementations return the errors of package errs: InvalidBlobNameError,
// BlobWrongKindError, NoContinuationError and StorageError (status 404 for
// a missing blob).
package blobstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

// MaxNameLen is the longest valid blob or directory name.
const MaxNameLen = 100

// Page is one reply of BlobDir.Query.
type Page struct {
	// Blobs and Dirs name the blobs and the non-empty sub-directories of
	// the directory. Their order is unspecified.
	Blobs []string
	Dirs  []string
	// Continuation is empty on the last page; otherwise pass it back to
	// Query for the next one.
	Continuation string
}

// BlobDir is one directory of a blob store. Implementations are safe for
// concurrent use.
type BlobDir interface {
	// ReadBlob returns the blob's bytes. A missing blob is a
	// *errs.StorageError with StatusCode 404; a directory is a
	// *errs.BlobWrongKindError.
	ReadBlob(ctx context.Context, name string) ([]byte, error)
	// WriteBlob creates or replaces a blob. The store keeps its own copy
	// of data. A directory of that name is a *errs.BlobWrongKindError.
	WriteBlob(ctx context.Context, name string, data []byte) error
	// RemoveBlob removes a blob; removing a missing one succeeds. A
	// directory is a *errs.BlobWrongKindError.
	RemoveBlob(ctx context.Context, name string) error
	// GetDir returns a sub-directory, created on demand (nothing is
	// written until a blob is). A blob of that name is a
	// *errs.BlobWrongKindError.
	GetDir(ctx context.Context, name string) (BlobDir, error)
	// Query lists blobs and non-empty sub-directories, one page at a
	// time. Pass "" for the first page. A token from another directory,
	// or a tampered one, is a *errs.NoContinuationError; repeating a token
	// returns the same page again or fails the same way.
	Query(ctx context.Context, continuation string) (Page, error)
	// RemoveAll removes the directory and everything under it. The
	// BlobDir stays usable, as an empty directory.
	RemoveAll(ctx context.Context) error
}

// Copier is an optional capability of a BlobDir: copying a blob from
// another directory of the same store without moving its bytes through
// the caller (S3 CopyObject, a shared buffer in memory, a hard link on
// disk). Use Copy, which falls back to read and write.
type Copier interface {
	// CopyBlob copies src/srcName to dstName in the receiver. It returns
	// ErrCopyUnsupported when src belongs to another store or the copy
	// cannot be done server-side; then nothing was written.
	CopyBlob(ctx context.Context, dstName string, src BlobDir, srcName string) error
}

// URLReader is an optional capability of a BlobDir whose store can hand
// out short-lived URLs from which a blob is fetched directly (S3 presigned
// GETs): a front end that cannot return large bodies itself (a Lambda
// reply is at most 6 MB) sends the client there instead.
type URLReader interface {
	// ReadBlobOrURL is ReadBlob for a blob of at most maxBytes bytes;
	// for a larger one it reads nothing of it and returns a URL that
	// serves its bytes to a plain GET, with no credentials, until the
	// URL's Expires. Errors are ReadBlob's.
	ReadBlobOrURL(ctx context.Context, name string, maxBytes int64) ([]byte, *BlobURL, error)
}

// BlobURL is where a large blob can be fetched for a short while.
type BlobURL struct {
	URL     string
	Size    int64
	Expires time.Time
}

// ErrCopyUnsupported is returned by Copier.CopyBlob when it cannot copy
// between the given directories.
var ErrCopyUnsupported = errors.New("blobstore: server-side copy not supported between these directories")

// Copy copies src/srcName to dst/dstName, server-side when dst implements
// Copier and accepts src, otherwise by reading and writing the bytes.
func Copy(ctx context.Context, dst BlobDir, dstName string, src BlobDir, srcName string) error {
	var server func() error
	if c, ok := dst.(Copier); ok {
		server = func() error { return c.CopyBlob(ctx, dstName, src, srcName) }
	}
	return copyVia(ctx, server, src, srcName, func(b []byte) error { return dst.WriteBlob(ctx, dstName, b) })
}

// copyVia copies with server (when not nil), or, when that is
// unsupported, reads src/srcName and writes the bytes with write.
func copyVia(ctx context.Context, server func() error, src BlobDir, srcName string, write func([]byte) error) error {
	if server != nil {
		if err := server(); !errors.Is(err, ErrCopyUnsupported) {
			return err
		}
	}
	b, err := src.ReadBlob(ctx, srcName)
	if err != nil {
		return err
	}
	return write(b)
}

// Store opens the root directory of any sheet. Sheet ids are checked with
// sheetid.Validate; the roots of two sheets never share a blob.
type Store interface {
	Sheet(sheet string) (BlobDir, error)
}

// APIUnaddressable are the characters a blob name may hold in a store but
// not in the HTTP API (pkg/api): behind an API Gateway HTTP API, which
// decodes a path twice and cuts it at a decoded "?", no escaping of "%" or
// "?" reaches the function intact (docs/lambda.md), so the same name would
// read a different blob, or none, on AWS; U+FFFD is what a path decoded
// into bytes that are not UTF-8 turns into in the function's JSON event,
// so a name holding it cannot be told from a mangled one. The API refuses
// such names alike on every deployment (errs.InvalidBlobNameError) and
// leaves them out of listings; pkg/client refuses them before any request.
// The engine never writes such names.
const APIUnaddressable = "%?\uFFFD"

// ValidateAPIName is ValidateName, and refuses the names the HTTP API
// cannot address (APIUnaddressable). The error is an
// *errs.InvalidBlobNameError.
func ValidateAPIName(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if strings.ContainsAny(name, APIUnaddressable) {
		return &errs.InvalidBlobNameError{Name: name, Message: fmt.Sprintf(
			"blob name %q holds %q, %q or U+FFFD, which this API cannot address (an HTTP API gateway decodes them away)", name, "%", "?")}
	}
	return nil
}

// ValidateName checks a blob or directory name: 1 to 100 characters, no
// "/", no NUL or other control character, not "." or "..". The error is an
// *errs.InvalidBlobNameError.
func ValidateName(name string) error {
	bad := func(why string) error {
		return &errs.InvalidBlobNameError{Name: name, Message: fmt.Sprintf("invalid blob name %q: %s", name, why)}
	}
	if name == "" {
		return bad("empty")
	}
	if n := len([]rune(name)); n > MaxNameLen {
		return bad(fmt.Sprintf("%d characters long, at most %d are allowed", n, MaxNameLen))
	}
	if name == "." || name == ".." {
		return bad("reserved")
	}
	// Every backend must store the same key, so a name must be valid text.
	if !utf8.ValidString(name) {
		return bad("not valid UTF-8")
	}
	for _, r := range name {
		switch {
		case r == '/':
			return bad(`contains "/"`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return bad("contains a control character")
		}
	}
	return nil
}

// BlobInfo describes a stored blob.
type BlobInfo struct {
	// Size is the blob's length in bytes.
	Size int64
	// ModTime is when the blob was last written, as the store keeps it
	// (S3 to the second). A blob made by Copier.CopyBlob may report the
	// time its source was written (a hard link shares it), so only a
	// blob written with WriteBlob says when it was written.
	ModTime time.Time
}

// Stater is an optional capability of a BlobDir: a blob's size and the
// time it was last written, without reading it. Snapshot retention uses
// it to learn, after a restart or in another process, when a snapshot
// completed (its index is the last blob written before completion).
type Stater interface {
	// StatBlob describes the blob. A missing blob is a
	// *errs.StorageError with StatusCode 404; a directory is a
	// *errs.BlobWrongKindError.
	StatBlob(ctx context.Context, name string) (BlobInfo, error)
}

// FreshWriter is an optional capability of a BlobDir: WriteBlob and
// Copier.CopyBlob without the checks that keep one name from being a blob
// and a directory at once. It is for a writer that owns its layout and
// knows that name is not a directory and that no directory on the way is
// a blob (the snapshot writer: snapshot directories hold only an index
// and tile blobs, and nothing else writes there). For any other name the
// outcome is undefined. Stores whose checks cost nothing extra need not
// implement it; an S3 store saves a LIST and a HEAD per level on every
// write. Use WriteFresh and CopyFresh, which fall back to the checked
// calls.
type FreshWriter interface {
	WriteFreshBlob(ctx context.Context, name string, data []byte) error
	// CopyFreshBlob is Copier.CopyBlob without the checks, with the same
	// ErrCopyUnsupported.
	CopyFreshBlob(ctx context.Context, dstName string, src BlobDir, srcName string) error
}

// WriteFresh writes data to dst/name, without kind checks when dst is a
// FreshWriter (see FreshWriter for when that is allowed).
func WriteFresh(ctx context.Context, dst BlobDir, name string, data []byte) error {
	if f, ok := dst.(FreshWriter); ok {
		return f.WriteFreshBlob(ctx, name, data)
	}
	return dst.WriteBlob(ctx, name, data)
}

// CopyFresh is Copy without kind checks when dst is a FreshWriter (see
// FreshWriter for when that is allowed).
func CopyFresh(ctx context.Context, dst BlobDir, dstName string, src BlobDir, srcName string) error {
	if f, ok := dst.(FreshWriter); ok {
		return copyVia(ctx, func() error { return f.CopyFreshBlob(ctx, dstName, src, srcName) }, src, srcName,
			func(b []byte) error { return f.WriteFreshBlob(ctx, dstName, b) })
	}
	return Copy(ctx, dst, dstName, src, srcName)
}
