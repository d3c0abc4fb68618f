package s3blob

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
)

// ReadBlobOrURL answers a small blob with its bytes and a large one with a
// presigned URL that serves the bytes to a plain GET, in one request
// either way; the errors are ReadBlob's.
func TestReadBlobOrURL(t *testing.T) {
	forEach(t, func(t *testing.T, em emulator) {
		rc := newRequestCounter()
		s := newStore(t, em, Options{URLTTL: time.Minute, ClientOptions: []func(o *s3.Options){rc.clientOption}})
		root := sheet(t, s, "sheet-1")
		var r blobstore.URLReader = root.(blobstore.URLReader)
		big := bytes.Repeat([]byte("0123456789"), 100)
		write(t, root, "small", "tiny")
		write(t, root, "big", string(big))
		write(t, subdir(t, root, "d"), "x", "in a directory")
		rc.take()

		b, u, err := r.ReadBlobOrURL(ctx, "small", 100)
		if err != nil || u != nil || string(b) != "tiny" {
			t.Fatalf("small: %q %+v %v", b, u, err)
		}
		if got := rc.take(); got != "GetObject=1" {
			t.Errorf("small blob: requests %s, want one GetObject", got)
		}
		b, u, err = r.ReadBlobOrURL(ctx, "big", 100)
		if err != nil || u == nil || b != nil || u.Size != int64(len(big)) || time.Until(u.Expires) > time.Minute {
			t.Fatalf("big: %d bytes, url %+v, %v", len(b), u, err)
		}
		if got := rc.take(); got != "GetObject=1" {
			t.Errorf("large blob: requests %s, want one GetObject (presigning sends nothing)", got)
		}
		if !strings.Contains(u.URL, "X-Amz-Signature=") || !strings.Contains(u.URL, "X-Amz-Expires=60") {
			t.Errorf("URL %s is not a presigned GET valid for 60 s", u.URL)
		}
		resp, err := http.Get(u.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(got, big) {
			t.Errorf("GET of the presigned URL: %d, %d bytes", resp.StatusCode, len(got))
		}
		if _, _, err := r.ReadBlobOrURL(ctx, "missing", 100); !is404(err) {
			t.Errorf("missing: %v, want 404", err)
		}
		if _, _, err := r.ReadBlobOrURL(ctx, "d", 100); !isWrongKind(err) {
			t.Errorf("directory: %v, want BlobWrongKindError", err)
		}
		if _, _, err := r.ReadBlobOrURL(ctx, "a/b", 100); err == nil {
			t.Error("an invalid name was read")
		}
	})
}
