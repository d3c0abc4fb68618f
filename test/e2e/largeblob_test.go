package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestLargeTile writes a sheet whose newest snapshot has a tile of about
// 5 MB: more than a Lambda reply can carry (6 MB, and a binary body is
// base64-encoded in it). The deployment answers the tile's read with a
// redirect to a short-lived URL of the blob (the single-machine server
// answers 200 directly); a client that follows redirects, as every HTTP
// client does by default, gets the bytes either way, and the snapshot
// matches the model.
func TestLargeTile(t *testing.T) {
	needDeployment(t)
	t.Parallel()
	const cells, valueLen = 101, 52_000
	entries := make([]genEntry, cells)
	for i := range entries {
		v := strings.Repeat(string(rune('a'+i%26)), valueLen)
		entries[i] = genEntry{row: int64(i), col: 0, value: json.RawMessage(strconv.Quote(v))}
	}
	r := newSheetRun("big-"+cfg.runID, entries)
	t.Cleanup(r.stop)
	// Appends, waits for every snapshot, and reads every tile back
	// (following redirects) against the model.
	r.runAndCheck(t)

	snaps := r.snapshotIDs()
	newest := strconv.FormatUint(snaps[len(snaps)-1], 10)
	tiles := listDir(t, r.sheet, newest+"/tiles")
	if len(tiles.Blobs) != 1 {
		t.Fatalf("snapshot %s has tiles %v, want one", newest, tiles.Blobs)
	}
	path := sheetPath(r.sheet) + "/blobs/" + newest + "/tiles/" + tiles.Blobs[0]
	followed := call(t, http.MethodGet, path, nil).expect(t, http.StatusOK, "GET the large tile")
	if len(followed.body) < 4<<20 {
		t.Fatalf("the tile is %d bytes: too small to test anything", len(followed.body))
	}
	t.Logf("tile %s: %.2f MB", tiles.Blobs[0], float64(len(followed.body))/1e6)

	// Without following: a redirect, or (a server with no reply bound)
	// the bytes.
	res := callNoRedirect(t, path)
	switch res.status {
	case http.StatusOK:
		if cfg.harness != "" {
			t.Fatalf("the Lambda harness answered a %d-byte blob inline; its reply cannot exceed 6 MB", len(res.body))
		}
		t.Log("answered inline (a deployment without a reply bound)")
	case http.StatusTemporaryRedirect:
		loc := res.header.Get("Location")
		if loc == "" || res.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("redirect without Location or with a cacheable reply: %v", res.header)
		}
		// The URL is all it takes: no credentials, no token.
		resp, err := http.Get(loc)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, followed.body) {
			t.Fatalf("GET of the redirect's URL: %d, %d bytes (want the %d of the tile)", resp.StatusCode, len(b), len(followed.body))
		}
		t.Logf("redirected to a presigned URL (%s…)", truncate(loc, 60))
	default:
		t.Fatalf("GET the large tile without following redirects: %d %s", res.status, truncate(string(res.body), 300))
	}
}

// callNoRedirect is call with a client that does not follow redirects.
func callNoRedirect(t *testing.T, path string) reply {
	t.Helper()
	c := *httpClient
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequest(http.MethodGet, cfg.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := authorize(req, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(fmt.Errorf("GET %s: %w", path, err))
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}
