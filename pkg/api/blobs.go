package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/errs"
)

// blobPath unescapes and validates the route's blob path. Each segment is
// unescaped on its own, so "%2F" yields a name with a "/" in it, which
// ValidateName refuses.
func (rq *request) blobPath() ([]string, error) {
	segs := rq.m.blob
	if len(segs) > MaxPathSegments {
		return nil, &errs.InvalidBlobNameError{Message: fmt.Sprintf("a blob path has at most %d names, this one has %d", MaxPathSegments, len(segs))}
	}
	names := make([]string, len(segs))
	for i, s := range segs {
		name, err := url.PathUnescape(s)
		if err != nil {
			return nil, &errs.InvalidBlobNameError{Name: s, Message: fmt.Sprintf("blob name %q is not a valid URL path segment", truncate(s, 120))}
		}
		// Names the API cannot address on every deployment alike are
		// refused (blobstore.APIUnaddressable).
		if err := blobstore.ValidateAPIName(name); err != nil {
			return nil, err
		}
		names[i] = name
	}
	return names, nil
}

// addressableOnly drops the names the API cannot address
// (blobstore.APIUnaddressable): listings leave them out.
func addressableOnly(names []string) []string {
	out := names[:0]
	for _, n := range names {
		if !strings.ContainsAny(n, blobstore.APIUnaddressable) {
			out = append(out, n)
		}
	}
	return out
}

// blobDir validates the sheet and the path and opens the directory that
// holds the path's last name (or, with all, the path itself).
func (h *handler) blobDir(rq *request, all bool) (blobstore.BlobDir, string, error) {
	sheet, err := rq.sheetParam()
	if err != nil {
		return nil, "", err
	}
	names, err := rq.blobPath()
	if err != nil {
		return nil, "", err
	}
	last := ""
	if !all {
		last, names = names[len(names)-1], names[:len(names)-1]
	}
	dir, err := h.cfg.Blobs.Sheet(sheet)
	if err != nil {
		return nil, "", err
	}
	for _, n := range names {
		if dir, err = dir.GetDir(rq.ctx, n); err != nil {
			return nil, "", err
		}
	}
	return dir, last, nil
}

// readBlob serves GET /v1/sheets/{sheet}/blobs/{path}.
func (h *handler) readBlob(rq *request) {
	if _, err := rq.queryParams(); err != nil {
		rq.fail(err)
		return
	}
	dir, name, err := h.blobDir(rq, false)
	if err != nil {
		rq.fail(err)
		return
	}
	var data []byte
	if ur, ok := dir.(blobstore.URLReader); ok && h.cfg.MaxInlineBlobBytes > 0 {
		var link *blobstore.BlobURL
		data, link, err = ur.ReadBlobOrURL(rq.ctx, name, h.cfg.MaxInlineBlobBytes)
		if err == nil && link != nil {
			rq.redirect(link.URL)
			return
		}
	} else {
		data, err = dir.ReadBlob(rq.ctx, name)
	}
	if err != nil {
		rq.fail(err)
		return
	}
	rq.write(200, "application/octet-stream", data)
}

// redirect answers 307 with the blob's short-lived URL (docs/api.md).
func (rq *request) redirect(url string) {
	rq.w.Header().Set("Location", url)
	rq.write(http.StatusTemporaryRedirect, "application/octet-stream", nil)
}

// listBlobs serves GET /v1/sheets/{sheet}/blobs/ and .../blobs/{path}/.
func (h *handler) listBlobs(rq *request) {
	q, err := rq.queryParams("continuation")
	if err != nil {
		rq.fail(err)
		return
	}
	if len(q["continuation"]) > MaxContinuationBytes {
		rq.fail(&errs.NoContinuationError{Message: fmt.Sprintf("a continuation token is at most %d characters", MaxContinuationBytes)})
		return
	}
	dir, _, err := h.blobDir(rq, true)
	if err != nil {
		rq.fail(err)
		return
	}
	page, err := dir.Query(rq.ctx, q["continuation"])
	if err != nil {
		rq.fail(err)
		return
	}
	b := append(make([]byte, 0, 64), `{"blobs":`...)
	b = appendStrings(b, addressableOnly(page.Blobs))
	b = append(b, `,"dirs":`...)
	b = appendStrings(b, addressableOnly(page.Dirs))
	if page.Continuation != "" {
		b = append(b, `,"continuation":`...)
		b = cell.AppendString(b, page.Continuation)
	}
	b = append(b, '}')
	rq.writeJSON(200, b)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = cell.AppendString(b, s)
	}
	return append(b, ']')
}
