package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
)

// harnessConfig mirrors the harness's GET /config.
type harnessConfig struct {
	SnapshotInterval int    `json:"snapshotInterval"`
	FaultFailFirst   int    `json:"faultFailFirst"`
	FaultSheetPrefix string `json:"faultSheetPrefix"`
	MaxRetries       int    `json:"maxRetries"`
	SweepGraceMS     int64  `json:"sweepGraceMs"`
	SweepEveryMS     int64  `json:"sweepEveryMs"`
	SnapshotRetain   int    `json:"snapshotRetain"`
	SnapshotGraceMS  int64  `json:"snapshotGraceMs"`
	TruncateLog      bool   `json:"truncateLog"`
}

type harnessStats struct {
	ESM struct {
		DeadLettered int `json:"deadLettered"`
		Sheets       map[string]struct {
			Matched      int `json:"matched"`
			Delivered    int `json:"delivered"`
			ItemFailures int `json:"itemFailures"`
			Dropped      int `json:"dropped"`
			DeadLettered int `json:"deadLettered"`
		} `json:"sheets"`
	} `json:"esm"`
	Sweeps struct {
		Invocations int `json:"invocations"`
		Ran         int `json:"ran"`
		Unknown     int `json:"unknown"`
		Retire      struct {
			Passes int `json:"passes"`
		} `json:"retire"`
	} `json:"sweeps"`
}

type deadLetter struct {
	Reason   string `json:"reason"`
	Attempts int    `json:"attempts"`
	Records  []struct {
		Sheet  string `json:"sheet"`
		Seq    string `json:"seq"`
		Failed bool   `json:"failed"`
	} `json:"records"`
}

// control calls the harness's control endpoint and decodes its JSON reply
// into out (if not nil).
func control(t testing.TB, method, path string, out any) {
	t.Helper()
	if err := controlErr(method, path, nil, out); err != nil {
		t.Fatalf("harness %s %s: %v", method, path, err)
	}
}

func controlErr(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, cfg.harness+path, rd)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return &httpError{resp.StatusCode, string(b)}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return http.StatusText(e.status) + ": " + e.body }

// reportMetric hands samples to the harness for its summary, when there is
// one.
func reportMetric(name string, values []float64) {
	if cfg.harness == "" || len(values) == 0 {
		return
	}
	_ = controlErr(http.MethodPost, "/metrics", map[string]any{"name": name, "values": values}, nil)
}
