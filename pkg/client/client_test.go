package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/sheetlog/sheetlog/internal/apitest"
	"github.com/sheetlog/sheetlog/pkg/cell"
	"github.com/sheetlog/sheetlog/pkg/client"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

func entry(row, col uint32, v string) eventlog.Entry {
	return eventlog.Entry{Body: client.Canonical(cell.Entry{Row: row, Column: col, Cell: cell.Cell{Value: cell.StringValue(v)}})}
}

// readAll reads a sheet's whole log straight from the server's store.
func readAll(t *testing.T, s *apitest.Server, sheet string) []eventlog.Entry {
	t.Helper()
	l, err := s.Logs.Log(sheet)
	if err != nil {
		t.Fatal(err)
	}
	var out []eventlog.Entry
	for p, err := range eventlog.Pages(t.Context(), l, eventlog.FromStart, eventlog.ToEnd, nil) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p.Entries...)
	}
	return out
}

// TestReadOnly: every write a thin client cannot make fails with a
// ValidationError matching ErrReadOnly, and sends nothing.
func TestReadOnly(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	c := s.Client(t)
	ctx := t.Context()
	l, d := c.Log("ro"), c.Blobs("ro")
	if _, err := l.AddEntry(ctx, 0, entry(0, 0, "x"), nil); err != nil {
		t.Fatal(err)
	}
	before := s.Requests.Load()
	check := func(what string, err error) {
		t.Helper()
		var ve *errs.ValidationError
		if !errors.As(err, &ve) || !errors.Is(err, client.ErrReadOnly) {
			t.Errorf("%s: %v (%T), want a ValidationError matching ErrReadOnly", what, err, err)
		}
	}
	_, err := l.SetMetadata(ctx, 0, eventlog.MetadataUpdate{History: eventlog.Set("h")})
	check("SetMetadata", err)
	check("Truncate", l.Truncate(ctx, 0))
	e := entry(0, 1, "y")
	e.Pending = eventlog.WorkflowSnapshot
	_, err = l.AddEntry(ctx, 1, e, nil)
	check("AddEntry with pending", err)
	e.Pending, e.Snapshot = "", "1"
	_, err = l.AddEntries(ctx, 1, []eventlog.Entry{entry(0, 2, "z"), e}, nil)
	check("AddEntries with a snapshot", err)
	check("WriteBlob", d.WriteBlob(ctx, "b", []byte("x")))
	check("RemoveBlob", d.RemoveBlob(ctx, "b"))
	check("RemoveAll", d.RemoveAll(ctx))
	if n := s.Requests.Load() - before; n != 0 {
		t.Errorf("the refused calls sent %d requests", n)
	}
	if got := readAll(t, s, "ro"); len(got) != 1 || got[0].Metadata != (eventlog.Metadata{}) {
		t.Errorf("the log holds %d entries, want the one appended, without metadata", len(got))
	}
}

// TestErrors: error replies decode into the contract's types.
func TestErrors(t *testing.T) {
	s := apitest.New(t, apitest.Options{Token: "sesame"})
	ctx := t.Context()
	good := s.Client(t, client.WithToken("sesame"))
	if _, err := good.Log("e").AddEntry(ctx, 0, entry(0, 0, "a"), nil); err != nil {
		t.Fatal(err)
	}
	_, err := good.Log("e").AddEntry(ctx, 0, entry(0, 0, "b"), nil)
	var ce *errs.ConflictError
	if !errors.As(err, &ce) || ce.NextSequenceID != 1 {
		t.Errorf("append at a taken id: %v, want a ConflictError with next id 1", err)
	}
	if _, err := good.Log("e").Query(ctx, eventlog.FromID(5), eventlog.ToEnd, nil); errs.TypeOf(err) != errs.TypeRange {
		t.Errorf("query beyond the end: %v, want a RangeError", err)
	}
	var se *errs.StorageError
	if _, err := good.Blobs("e").ReadBlob(ctx, "nope"); !errors.As(err, &se) || se.StatusCode != 404 {
		t.Errorf("missing blob: %v, want a StorageError 404", err)
	}
	bad := s.Client(t, client.WithToken("wrong"))
	_, err = bad.Status(ctx, "e")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Type != client.TypeUnauthorized || client.TypeOf(err) != "Unauthorized" {
		t.Errorf("wrong token: %v, want an Unauthorized *client.Error", err)
	}
	// A JWT deployment refuses a sheet the token's scopes do not cover
	// with 403 Forbidden.
	s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(403)
		_, _ = w.Write([]byte(`{"type":"Forbidden","message":"the token's scopes do not allow GET on sheet e"}`))
		return true
	})
	_, err = good.Status(ctx, "e")
	if !errors.As(err, &ae) || ae.Status != 403 || !strings.Contains(err.Error(), "not allowed on this sheet") {
		t.Errorf("403: %v, want a Forbidden *client.Error saying it is not allowed on this sheet", err)
	}
}

// TestRetries: 429 and 503 are retried, honouring Retry-After; a refused
// connection too.
func TestRetries(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	c := s.Client(t)
	ctx := t.Context()
	var n atomic.Int32
	s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		case 2:
			// The failed-authentication limiter holds the address back.
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"type":"Unauthorized","message":"too many failed attempts from this address; retry in 0 s"}`))
			return true
		case 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"type":"StorageError","message":"down","statusCode":503}`))
			return true
		}
		return false
	})
	start := time.Now()
	if _, err := c.Status(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before the Retry-After of 1 s", d)
	}
	if n.Load() != 4 {
		t.Errorf("%d requests, want 4", n.Load())
	}
	// Every attempt failing ends in the last failure.
	s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusServiceUnavailable)
		return true
	})
	var se *errs.StorageError
	if _, err := c.Status(ctx, "r"); !errors.As(err, &se) || se.StatusCode != 503 {
		t.Errorf("always 503: %v, want a StorageError 503", err)
	}
	// A context that ends stops the retries.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	slow := s.Client(t, client.WithRetry(client.Retry{Attempts: 100, Base: time.Second, Cap: time.Second}))
	if _, err := slow.Status(short, "r"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ended context: %v, want one matching context.DeadlineExceeded", err)
	}
}

// hijackAfter lets the handler serve the request, then drops the
// connection instead of sending the reply: a reply lost on the way back.
func hijackAfter(s *apitest.Server, w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	s.Handler.ServeHTTP(rec, r)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// TestLostReply: an append whose reply is lost is resolved by reading
// the log: ours (no second copy), absent (sent again), theirs (a
// conflict).
func TestLostReply(t *testing.T) {
	s := apitest.New(t, apitest.Options{})
	c := s.Client(t)
	ctx := t.Context()
	lostOnce := func(what func(w http.ResponseWriter, r *http.Request)) *atomic.Int32 {
		var posts atomic.Int32
		s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost {
				return false
			}
			if posts.Add(1) == 1 {
				what(w, r)
				return true
			}
			return false
		})
		return &posts
	}

	t.Run("Ours", func(t *testing.T) {
		batch := []eventlog.Entry{entry(0, 0, "a"), entry(0, 1, "b")}
		if !batchSupported(t, s) {
			batch = batch[:1]
		}
		posts := lostOnce(func(w http.ResponseWriter, r *http.Request) { hijackAfter(s, w, r) })
		l := c.Log("ours")
		if _, err := l.AddEntries(ctx, 0, batch, nil); err != nil {
			t.Fatalf("append whose reply was lost: %v", err)
		}
		if got := readAll(t, s, "ours"); len(got) != len(batch) {
			t.Fatalf("the log holds %d entries, want %d: the append landed once", len(got), len(batch))
		}
		if posts.Load() != 1 {
			t.Errorf("%d POSTs: the append was sent again although it had landed", posts.Load())
		}
	})
	t.Run("Absent", func(t *testing.T) {
		posts := lostOnce(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway) // a gateway that never reached the API
		})
		if _, err := c.Log("absent").AddEntry(ctx, 0, entry(0, 0, "a"), nil); err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, s, "absent"); len(got) != 1 || posts.Load() != 2 {
			t.Fatalf("%d entries after %d POSTs, want 1 after 2", len(got), posts.Load())
		}
	})
	t.Run("Theirs", func(t *testing.T) {
		direct, _ := s.Logs.Log("theirs")
		lostOnce(func(w http.ResponseWriter, r *http.Request) {
			// Another writer takes the id while our reply is lost.
			if _, err := direct.AddEntries(r.Context(), 0, []eventlog.Entry{entry(9, 9, "other"), entry(9, 8, "other")}, nil); err != nil {
				t.Error(err)
			}
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
		})
		_, err := c.Log("theirs").AddEntry(ctx, 0, entry(0, 0, "a"), nil)
		var ce *errs.ConflictError
		if !errors.As(err, &ce) || ce.NextSequenceID != 2 {
			t.Fatalf("append beaten while its reply was lost: %v, want a ConflictError with next id 2", err)
		}
		if got := readAll(t, s, "theirs"); len(got) != 2 {
			t.Fatalf("the log holds %d entries, want the other writer's 2", len(got))
		}
	})
	t.Run("Unknown", func(t *testing.T) {
		// Every reply lost, and the log unreadable: the outcome is
		// unknown, a StorageError, and the Writer settles it later.
		s.SetFault(t, func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPost {
				hijackAfter(s, w, r)
			} else {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return true
		})
		w := c.Writer("unknown", 0)
		_, err := w.Append(ctx, cell.Entry{Row: 1, Column: 1, Cell: cell.Cell{Value: cell.BoolValue(true)}})
		if errs.TypeOf(err) != errs.TypeStorage {
			t.Fatalf("append with every reply lost: %v, want a StorageError", err)
		}
		s.SetFault(t, func(http.ResponseWriter, *http.Request) bool { return false })
		first, err := w.Append(ctx, cell.Entry{Row: 2, Column: 2, Cell: cell.Cell{Value: cell.BoolValue(false)}})
		if err != nil || first != 1 || w.Stats.Resolved != 1 {
			t.Fatalf("the next append: at %d, %v, %d settled; want at 1 after settling the first at 0", first, err, w.Stats.Resolved)
		}
		if got := readAll(t, s, "unknown"); len(got) != 2 {
			t.Fatalf("the log holds %d entries, want 2", len(got))
		}
	})
}

// batchSupported reports whether the server takes "entries" (batch
// appends arrive with the feed branch of issue 9).
func batchSupported(t *testing.T, s *apitest.Server) bool {
	t.Helper()
	c := s.Client(t)
	_, err := c.Log("probe-batch").AddEntries(t.Context(), 0, []eventlog.Entry{entry(0, 0, "a"), entry(0, 1, "b")}, nil)
	return err == nil
}

// TestSigV4 signs requests with the SDK's v4 signer for execute-api.
func TestSigV4(t *testing.T) {
	var got atomic.Value
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization") + " | " + r.Header.Get("X-Amz-Content-Sha256") + r.Header.Get("X-Amz-Date"))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	}))
	defer hs.Close()
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	c, err := client.New(hs.URL, client.WithAuth(&client.SigV4{Credentials: aws.NewCredentialsCache(creds), Region: "eu-west-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	h, _ := got.Load().(string)
	if !strings.HasPrefix(h, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(h, "/eu-west-1/execute-api/aws4_request") {
		t.Fatalf("Authorization: %s", h)
	}
}

func TestBaseURL(t *testing.T) {
	for _, bad := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := client.New(bad); err == nil {
			t.Errorf("New(%q) succeeded", bad)
		}
	}
	c, err := client.New("https://example.com/prod/")
	if err != nil || c.BaseURL() != "https://example.com/prod" {
		t.Errorf("New: %v %q", err, fmt.Sprint(c.BaseURL()))
	}
}

// TestBlobRedirect: a blob read redirected to another host (the AWS
// deployment's presigned S3 URL of a large blob) follows the redirect and
// carries none of the API's credentials there: no Authorization, and none
// of a SigV4 signature's x-amz- headers, which S3 refuses on a presigned
// URL that did not sign them.
func TestBlobRedirect(t *testing.T) {
	blob := strings.Repeat("tile", 1000)
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var creds []string
		for k := range r.Header {
			if k == "Authorization" || strings.HasPrefix(strings.ToLower(k), "x-amz-") {
				creds = append(creds, k)
			}
		}
		leaked.Store(fmt.Sprint(creds))
		_, _ = w.Write([]byte(blob))
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Security-Token") == "" {
			t.Errorf("the API's request is not signed with the session token: %v", r.Header)
		}
		// 127.0.0.1 and localhost: another host, as S3 is to API Gateway.
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/bucket/key?X-Amz-Signature=x", http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "session")
	c, err := client.New(api.URL, client.WithAuth(&client.SigV4{Credentials: aws.NewCredentialsCache(creds), Region: "eu-west-1"}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Blobs("sheet-1").ReadBlob(t.Context(), "big")
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != blob {
		t.Fatalf("read %d bytes, want the %d the redirect serves", len(b), len(blob))
	}
	if l, _ := leaked.Load().(string); l != "[]" {
		t.Errorf("the redirected request carried the API's credentials: %s", l)
	}
}
