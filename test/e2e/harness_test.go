package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// harnessConfig mirrors the harness's GET /config.
type harnessConfig struct {
	SnapshotInterval int      `json:"snapshotInterval"`
	FaultFailFirst   int      `json:"faultFailFirst"`
	FaultSheetPrefix string   `json:"faultSheetPrefix"`
	MaxRetries       int      `json:"maxRetries"`
	SweepGraceMS     int64    `json:"sweepGraceMs"`
	SweepEveryMS     int64    `json:"sweepEveryMs"`
	SnapshotRetain   int      `json:"snapshotRetain"`
	SnapshotGraceMS  int64    `json:"snapshotGraceMs"`
	TruncateLog      bool     `json:"truncateLog"`
	DeadLetterPrefix string   `json:"deadLetterPrefix"`
	CORSOrigins      []string `json:"corsOrigins"`
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
	Functions map[string]struct {
		Invocations int `json:"invocations"`
	} `json:"functions"`
}

// deadLetter is what Lambda sends the on-failure destination of a
// DynamoDB stream mapping: metadata only.
type deadLetter struct {
	RequestContext struct {
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		FunctionError string `json:"functionError"`
	} `json:"responseContext"`
	Info json.RawMessage `json:"DDBStreamBatchInfo"`
	// raw is the whole message.
	raw json.RawMessage
}

func (d *deadLetter) UnmarshalJSON(b []byte) error {
	type plain deadLetter
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*d = deadLetter(p)
	d.raw = append(json.RawMessage(nil), b...)
	return nil
}

// streamRecord is a record of a dead letter's range, as the harness reads
// it back from the stream (the runbook's GetRecords).
type streamRecord struct {
	Sheet          string `json:"sheet"`
	Seq            string `json:"seq"`
	SequenceNumber string `json:"sequenceNumber"`
	Pending        string `json:"pending"`
}

// deadLetterFor waits until a dead letter's range holds the record of
// sheet/seq and returns the letter, reading each new letter's range from
// the stream once.
func deadLetterFor(t *testing.T, sheet, seq string, wait time.Duration) deadLetter {
	t.Helper()
	deadline := time.Now().Add(wait)
	looked := map[string]bool{}
	for {
		var dl []deadLetter
		control(t, http.MethodGet, "/dead-letters", &dl)
		for _, d := range dl {
			if looked[string(d.Info)] {
				continue
			}
			looked[string(d.Info)] = true
			var recs []streamRecord
			if err := controlErr(http.MethodPost, "/stream-records", d.Info, &recs); err != nil {
				t.Fatalf("reading a dead letter's records from the stream: %v", err)
			}
			for _, r := range recs {
				if r.Sheet == sheet && r.Seq == seq && r.Pending != "" {
					return d
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter names %s/%s after %v", sheet, seq, wait)
		}
		time.Sleep(200 * time.Millisecond)
	}
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
