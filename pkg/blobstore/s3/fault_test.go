package s3blob

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

// failingHTTP answers the first `fail` requests itself with an S3 error
// of the given status and code, and passes the rest to the emulator.
type failingHTTP struct {
	next     s3.HTTPClient
	fail     int64
	status   int
	code     string
	attempts atomic.Int64 // every request
	sent     atomic.Int64 // requests that reached the emulator
}

func (f *failingHTTP) Do(r *http.Request) (*http.Response, error) {
	if f.attempts.Add(1) <= f.fail {
		if r.Body != nil {
			io.Copy(io.Discard, r.Body)
			r.Body.Close()
		}
		body := "<Error><Code>" + f.code + "</Code><Message>injected</Message></Error>"
		return &http.Response{
			StatusCode:    f.status,
			Status:        http.StatusText(f.status),
			Header:        http.Header{"Content-Type": {"application/xml"}},
			Body:          io.NopCloser(strings.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       r,
		}, nil
	}
	f.sent.Add(1)
	return f.next.Do(r)
}

func flakyStore(t *testing.T, f *failingHTTP, opts Options) *Store {
	t.Helper()
	cfg, bucket := gofakes3Bucket(t)
	f.next = awshttp.NewBuildableClient()
	opts.ClientOptions = append(opts.ClientOptions, func(o *s3.Options) { o.HTTPClient = f })
	return storeOn(t, cfg, bucket, opts)
}

// Throttling and 5xx answers are retried with backoff until they pass.
func TestRetriesTransientErrors(t *testing.T) {
	for _, c := range []struct {
		status int
		code   string
	}{{503, "SlowDown"}, {500, "InternalError"}, {503, "ServiceUnavailable"}} {
		t.Run(c.code, func(t *testing.T) {
			f := &failingHTTP{fail: 3, status: c.status, code: c.code}
			s := flakyStore(t, f, Options{})
			root := sheet(t, s, "s")
			// The first 3 attempts (of the kind check's listing) fail.
			write(t, root, "a", "v")
			if got := read(t, root, "a"); got != "v" {
				t.Fatalf("read %q", got)
			}
			if n := f.sent.Load(); n != 3 {
				t.Errorf("%d requests reached S3, want 3 (list, put, get)", n)
			}
		})
	}
}

// Past MaxAttempts, the failure is a StorageError with no 4xx status (the
// API answers 503), after exactly MaxAttempts attempts.
func TestGivesUpAfterMaxAttempts(t *testing.T) {
	f := &failingHTTP{fail: 1 << 40, status: 503, code: "SlowDown"}
	s := flakyStore(t, f, Options{MaxAttempts: 3})
	_, err := sheet(t, s, "s").ReadBlob(ctx, "a")
	var se *errs.StorageError
	if !errors.As(err, &se) || se.Status() != 503 {
		t.Fatalf("ReadBlob = %#v, want StorageError 503", err)
	}
	if n := f.attempts.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
}

// A refusal (403) is not retried, and is the server's problem: 503, not a
// 403 to the API's caller.
func TestDoesNotRetryRefusals(t *testing.T) {
	f := &failingHTTP{fail: 1, status: 403, code: "AccessDenied"}
	s := flakyStore(t, f, Options{})
	_, err := sheet(t, s, "s").ReadBlob(ctx, "a")
	var se *errs.StorageError
	if !errors.As(err, &se) || se.Status() != 503 {
		t.Fatalf("ReadBlob = %#v, want StorageError 503", err)
	}
	if n := f.attempts.Load(); n != 1 || f.sent.Load() != 0 {
		t.Errorf("%d attempts, %d sent; want 1 and 0", n, f.sent.Load())
	}
}

// A cancelled or expiring context ends the call, backoff included.
func TestContext(t *testing.T) {
	f := &failingHTTP{fail: 1 << 40, status: 503, code: "SlowDown"}
	// Throttling backs off from 1s: without the deadline this call would
	// take seconds.
	s := flakyStore(t, f, Options{MaxAttempts: 10, MaxBackoff: 5 * time.Second, BaseDelay: time.Second})
	root := sheet(t, s, "s")
	c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := root.WriteBlob(c, "a", []byte("x"))
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("WriteBlob took %v past its deadline", el)
	}
	var se *errs.StorageError
	if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WriteBlob with expiring context = %v, want a StorageError wrapping DeadlineExceeded", err)
	}
	c, cancel = context.WithCancel(ctx)
	cancel()
	if _, err := root.Query(c, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("Query with cancelled context = %v", err)
	}
}
