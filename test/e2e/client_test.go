package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// env is the suite's configuration, read once.
type env struct {
	base, harness string
	token         string
	sigv4         bool
	creds         aws.Credentials
	region        string
	cells, sheets int
	wait          time.Duration
	runID         string
}

var cfg = func() env {
	e := env{
		base:    strings.TrimRight(os.Getenv("SHEETLOG_E2E_BASE_URL"), "/"),
		harness: strings.TrimRight(os.Getenv("SHEETLOG_E2E_HARNESS_URL"), "/"),
		token:   os.Getenv("SHEETLOG_E2E_TOKEN"),
		sigv4:   os.Getenv("SHEETLOG_E2E_SIGV4") == "1",
		region:  os.Getenv("AWS_REGION"),
		cells:   envInt("SHEETLOG_E2E_CELLS", 1000),
		sheets:  envInt("SHEETLOG_E2E_SHEETS", 3),
		wait:    3 * time.Minute,
	}
	if d, err := time.ParseDuration(os.Getenv("SHEETLOG_E2E_WAIT")); err == nil && d > 0 {
		e.wait = d
	}
	e.creds = aws.Credentials{
		AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
		SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
		SessionToken:    os.Getenv("AWS_SESSION_TOKEN"),
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	e.runID = strconv.FormatInt(time.Now().Unix()%1e6, 36) + hex.EncodeToString(b[:])
	return e
}()

func envInt(k string, d int) int {
	if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
		return n
	}
	return d
}

// skipOutsideCI skips the test, except in CI (CI=true), where only
// `make e2e` runs this suite and a missing harness is a broken set-up.
func skipOutsideCI(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// needDeployment skips the test when no base URL is given.
func needDeployment(t *testing.T) {
	t.Helper()
	if cfg.base == "" {
		skipOutsideCI(t, "SHEETLOG_E2E_BASE_URL is not set: the end-to-end suite needs a running deployment "+
			"(`make e2e` starts the local Lambda harness and runs it)")
	}
	if cfg.sigv4 && (cfg.creds.AccessKeyID == "" || cfg.region == "") {
		t.Fatal("SHEETLOG_E2E_SIGV4=1 needs AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION")
	}
}

// needHarness skips the test unless the local harness's control endpoint
// is given: it uses powers a real deployment does not offer.
func needHarness(t *testing.T, what string) harnessConfig {
	t.Helper()
	needDeployment(t)
	if cfg.harness == "" {
		skipOutsideCI(t, fmt.Sprintf("needs the local Lambda harness (SHEETLOG_E2E_HARNESS_URL) to %s; skipped against a deployment", what))
	}
	var hc harnessConfig
	control(t, http.MethodGet, "/config", &hc)
	return hc
}

// httpClient follows redirects (a large blob is answered with one to a
// presigned URL) without carrying the API's credentials to another host:
// Go drops Authorization there by itself, and the SigV4 headers go too,
// since the URL carries its own signature.
var httpClient = &http.Client{Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return fmt.Errorf("stopped after %d redirects", len(via))
	}
	if req.URL.Host != via[0].URL.Host {
		for k := range req.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-") {
				req.Header.Del(k)
			}
		}
	}
	return nil
}}

// authorize adds the configured credentials to req, whose body is payload.
func authorize(req *http.Request, payload []byte) error {
	if cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.token)
	}
	if cfg.sigv4 {
		sum := sha256.Sum256(payload)
		if err := v4.NewSigner().SignHTTP(req.Context(), cfg.creds, req, hex.EncodeToString(sum[:]), "execute-api", cfg.region, time.Now()); err != nil {
			return fmt.Errorf("signing: %w", err)
		}
	}
	return nil
}

// reply is an HTTP response, fully read.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", truncate(string(r.body), 300), err)
	}
}

// call sends one API request (path relative to the base URL, already
// escaped) and returns the reply; transport failures fail the test.
func call(t testing.TB, method, path string, body any) reply {
	t.Helper()
	r, err := try(context.Background(), method, path, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

func try(ctx context.Context, method, path string, body any) (reply, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return reply{}, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, cfg.base+path, bytes.NewReader(payload))
	if err != nil {
		return reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := authorize(req, payload); err != nil {
		return reply{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// expect fails unless the reply has the status.
func (r reply) expect(t testing.TB, status int, what string) reply {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.status, status, truncate(string(r.body), 500))
	}
	return r
}

func sheetPath(sheet string) string { return "/v1/sheets/" + url.PathEscape(sheet) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// API shapes (rest-api.md), for the tests that look at the HTTP exchange
// itself.

type snapshotRef struct {
	SequenceID string `json:"sequenceId"`
	BlobID     string `json:"blobId"`
}

type logPage struct {
	Start        string       `json:"startSequenceId"`
	End          string       `json:"endSequenceId"`
	Complete     bool         `json:"isComplete"`
	LastSnapshot *snapshotRef `json:"lastSnapshot"`
	Entries      []logEntry   `json:"entries"`
}

type logEntry struct {
	Type     string           `json:"type"`
	Row      int64            `json:"row"`
	Column   int64            `json:"column"`
	Value    *json.RawMessage `json:"value"`
	Format   *string          `json:"format"`
	Snapshot string           `json:"snapshot"`
	History  string           `json:"history"`
	Pending  string           `json:"pending"`
	// present records which members the entry had.
	present map[string]bool
}

func (e *logEntry) UnmarshalJSON(b []byte) error {
	type plain logEntry
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return err
	}
	*e = logEntry(p)
	e.present = map[string]bool{}
	for k := range keys {
		e.present[k] = true
	}
	if e.present["value"] && e.Value == nil {
		null := json.RawMessage("null")
		e.Value = &null
	}
	return nil
}

type blobList struct {
	Blobs        []string `json:"blobs"`
	Dirs         []string `json:"dirs"`
	Continuation string   `json:"continuation"`
}

// readLog reads entries [from, to) page by page, through the client.
func readLog(t testing.TB, sheet string, from, to uint64) []logEntry {
	t.Helper()
	var out []logEntry
	pages := eventlog.Pages(context.Background(), thin(t).Log(sheet), eventlog.FromID(eventlog.SequenceID(from)), eventlog.ToID(eventlog.SequenceID(to)), nil)
	for p, err := range pages {
		if err != nil {
			t.Fatalf("reading the log of %s [%d, %d): %v", sheet, from, to, err)
		}
		for _, e := range p.Entries {
			le, err := decodeLogEntry(e)
			if err != nil {
				t.Fatalf("entry of %s: %s: %v", sheet, e.Body, err)
			}
			out = append(out, le)
		}
	}
	return out
}

// listDir lists a blob directory (path "" for the root, else "a/b")
// through every page, through the client.
func listDir(t testing.TB, sheet, path string) blobList {
	t.Helper()
	ctx := context.Background()
	var d blobstore.BlobDir = thin(t).Blobs(sheet)
	if path != "" {
		for _, name := range strings.Split(path, "/") {
			var err error
			if d, err = d.GetDir(ctx, name); err != nil {
				t.Fatalf("GetDir %s of %s: %v", path, sheet, err)
			}
		}
	}
	var all blobList
	cont := ""
	for i := 0; ; i++ {
		p, err := d.Query(ctx, cont)
		if err != nil {
			t.Fatalf("listing %s/%s: %v", sheet, path, err)
		}
		all.Blobs = append(all.Blobs, p.Blobs...)
		all.Dirs = append(all.Dirs, p.Dirs...)
		if p.Continuation == "" {
			return all
		}
		if i > 10000 {
			t.Fatal("listing never ends")
		}
		cont = p.Continuation
	}
}
