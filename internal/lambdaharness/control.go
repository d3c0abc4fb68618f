package lambdaharness

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

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
	SnapshotRetain  int   `json:"snapshotRetain"`
	SnapshotGraceMS int64 `json:"snapshotGraceMs"`
	TruncateLog     bool  `json:"truncateLog"`
}

// controlHandler serves the harness-only powers:
//
//	GET  /config                       HarnessConfig
//	GET  /stats                        mapping and sweeper counters
//	GET  /dead-letters                 the dead-letter queue
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
		})
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"esm": h.ESM.Stats(), "sweeps": h.Sweeps()})
	})
	mux.HandleFunc("GET /emf", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.EMF())
	})
	mux.HandleFunc("GET /dead-letters", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, h.ESM.DeadLetters())
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
