package lambdaharness

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/errs"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// HarnessConfig is what GET /config on the control endpoint reports, so
// the suite can adapt to the harness without hard-coding its settings.
type HarnessConfig struct {
	SnapshotInterval int    `json:"snapshotInterval"`
	FaultFailFirst   int    `json:"faultFailFirst"`
	FaultSheetPrefix string `json:"faultSheetPrefix"`
	MaxRetries       int    `json:"maxRetries"`
	SweepGraceMS     int64  `json:"sweepGraceMs"`
	SweepEveryMS     int64  `json:"sweepEveryMs"`
	// SnapshotRetain (K, 0 when everything is kept), SnapshotGraceMS (G)
	// and TruncateLog are the functions' retention.
	SnapshotRetain   int    `json:"snapshotRetain"`
	SnapshotGraceMS  int64  `json:"snapshotGraceMs"`
	TruncateLog      bool   `json:"truncateLog"`
	DeadLetterPrefix string `json:"deadLetterPrefix"`
	// CORSOrigins are the origins the API allows (CORS).
	CORSOrigins []string `json:"corsOrigins"`
}

// controlHandler serves the harness-only powers:
//
//	GET  /config                       HarnessConfig
//	GET  /stats                        mapping and sweeper counters
//	GET  /dead-letters                 the dead-letter queue: what Lambda
//	                                   sends an on-failure destination
//	POST /stream-records {DDBStreamBatchInfo}
//	                                   the records of a dead letter's range,
//	                                   read from the stream (sheet, seq,
//	                                   pending of each)
//	POST /redrive {DDBStreamBatchInfo} re-drive them: invoke the workflow
//	                                   function with those records
//	POST /drop?sheet=S                 drop every later stream record of S
//	POST /inject?sheet=S&seq=N&workflow=W
//	                                   append an entry with pending=W at N,
//	                                   straight to the table (no API
//	                                   accepts pending from a client)
//	POST /metrics {"name":..,"values":[..]}  samples (ms) for the report
//	GET  /emf                          EMFStats: the metrics the functions
//	                                   published in their logs
func (h *Harness) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, HarnessConfig{
			SnapshotInterval: h.o.SnapshotInterval,
			FaultFailFirst:   h.o.FaultFailFirst,
			FaultSheetPrefix: h.o.FaultSheetPrefix,
			MaxRetries:       h.o.MaxRetries,
			SweepGraceMS:     h.o.SweepGrace.Milliseconds(),
			SweepEveryMS:     h.o.SweepEvery.Milliseconds(),
			SnapshotRetain:   max(h.o.Retention.Retain, 0),
			SnapshotGraceMS:  h.o.Retention.Grace.Milliseconds(),
			TruncateLog:      h.o.Retention.TruncateLog,
			DeadLetterPrefix: h.o.DeadLetterPrefix,
			CORSOrigins:      CORSOrigins,
		})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		fns := map[string]FunctionCounts{}
		for _, f := range []*Function{h.API, h.Workflow, h.Sweeper} {
			st := f.Stats()
			fns[f.Name()] = FunctionCounts{Invocations: st.Invocations, FunctionErrors: st.FunctionErrors, Restarts: st.Restarts}
		}
		writeJSON(w, http.StatusOK, map[string]any{"esm": h.ESM.Stats(), "sweeps": h.Sweeps(), "functions": fns})
	})
	mux.HandleFunc("GET /emf", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.EMF())
	})
	mux.HandleFunc("GET /dead-letters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.ESM.DeadLetters())
	})
	batchInfo := func(w http.ResponseWriter, r *http.Request) (DDBStreamBatchInfo, bool) {
		var info DDBStreamBatchInfo
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&info); err != nil ||
			info.ShardID == "" || info.StartSequenceNumber == "" || info.EndSequenceNumber == "" || info.StreamARN == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want a dead letter's DDBStreamBatchInfo"})
			return info, false
		}
		return info, true
	}
	mux.HandleFunc("POST /stream-records", func(w http.ResponseWriter, r *http.Request) {
		info, ok := batchInfo(w, r)
		if !ok {
			return
		}
		recs, err := RecordsInRange(r.Context(), h.streams, info)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		out := make([]RecordKey, len(recs))
		for i, rec := range recs {
			out[i] = recordKey(rec)
		}
		writeJSON(w, http.StatusOK, out)
	})
	mux.HandleFunc("POST /redrive", func(w http.ResponseWriter, r *http.Request) {
		info, ok := batchInfo(w, r)
		if !ok {
			return
		}
		resp, n, err := Redrive(r.Context(), h.streams, h.Workflow, info)
		if err != nil {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"records": n, "batchItemFailures": resp.BatchItemFailures})
	})
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) {
		sheet := r.URL.Query().Get("sheet")
		if sheet == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "sheet is required"})
			return
		}
		h.ESM.Drop(sheet)
		writeJSON(w, http.StatusOK, map[string]string{"dropping": sheet})
	})
	mux.HandleFunc("POST /inject", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		seq, err := strconv.ParseUint(q.Get("seq"), 10, 64)
		if err != nil || q.Get("workflow") == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "seq (a number) and workflow are required"})
			return
		}
		l, err := h.stores.Logs.Log(q.Get("sheet"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		e := eventlog.Entry{
			Body:     json.RawMessage(`{"type":"SetCellValueAndFormat","row":0,"column":0,"value":"injected"}`),
			Metadata: eventlog.Metadata{Pending: q.Get("workflow")},
		}
		if _, err := l.AddEntry(r.Context(), eventlog.SequenceID(seq), e, nil); err != nil {
			status := http.StatusInternalServerError
			var ce *errs.ConflictError
			if errors.As(err, &ce) {
				status = http.StatusConflict
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"sheet": q.Get("sheet"), "seq": seq, "workflow": q.Get("workflow")})
	})
	mux.HandleFunc("POST /metrics", func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			Name   string    `json:"name"`
			Values []float64 `json:"values"`
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&m); err != nil || m.Name == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want {\"name\":...,\"values\":[...]}"})
			return
		}
		h.mu.Lock()
		h.metrics[m.Name] = append(h.metrics[m.Name], m.Values...)
		h.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]int{"stored": len(m.Values)})
	})
	return mux
}

// RecordKey is what GET /stream-records says of a record: the entry it is
// about and whether its new image has pending.
type RecordKey struct {
	Sheet          string `json:"sheet"`
	Seq            string `json:"seq"`
	SequenceNumber string `json:"sequenceNumber"`
	Pending        string `json:"pending,omitempty"`
}

func recordKey(r events.DynamoDBEventRecord) RecordKey {
	k := RecordKey{SequenceNumber: r.Change.SequenceNumber}
	if v, ok := r.Change.Keys[awsschema.AttrSheet]; ok && v.DataType() == events.DataTypeString {
		k.Sheet = v.String()
	}
	if v, ok := r.Change.Keys[awsschema.AttrSeq]; ok && v.DataType() == events.DataTypeNumber {
		k.Seq = v.Number()
	}
	if v, ok := r.Change.NewImage[awsschema.AttrPending]; ok && v.DataType() == events.DataTypeString {
		k.Pending = v.String()
	}
	return k
}

// FunctionCounts are a function's counters as GET /stats reports them.
type FunctionCounts struct {
	Invocations    int `json:"invocations"`
	FunctionErrors int `json:"functionErrors"`
	Restarts       int `json:"restarts"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
