package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestCORSPreflight sends a browser's preflight (no credentials) and a
// request from the same origin. The gateway answers the preflight itself,
// before any authorizer: the API function never sees it. Not parallel: it
// counts the function's invocations, which no other test may add to
// meanwhile (parallel tests wait until the sequential ones are done).
func TestCORSPreflight(t *testing.T) {
	hc := needHarness(t, "know the allowed origins and count the API function's invocations")
	if len(hc.CORSOrigins) == 0 {
		t.Fatal("the harness allows no CORS origin")
	}
	origin := hc.CORSOrigins[0]
	invocations := func() int {
		var st harnessStats
		control(t, http.MethodGet, "/stats", &st)
		return st.Functions["api-lambda"].Invocations
	}
	before := invocations()
	for _, path := range []string{"/v1/sheets/" + cfg.runID + "-cors/log", "/healthz"} {
		req, err := http.NewRequest(http.MethodOptions, cfg.base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		// What a browser sends: no Authorization, no signature.
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
			t.Errorf("preflight of %s: %d %v", path, resp.StatusCode, h)
		}
	}
	if after := invocations(); after != before {
		t.Errorf("the API function was invoked %d times by preflight requests; the gateway answers them", after-before)
	}
	// The request itself (with credentials, as the stack's /healthz route
	// has the API's authorizer) carries the gateway's CORS header.
	req, _ := http.NewRequest(http.MethodGet, cfg.base+"/healthz", nil)
	req.Header.Set("Origin", origin)
	if err := authorize(req, nil); err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("GET /healthz from %s: %d, Access-Control-Allow-Origin %q", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}
