package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/sheetlog/sheetlog/pkg/metrics"
	"github.com/sheetlog/sheetlog/pkg/metrics/prom"
)

// serveMetrics serves the metrics of the process (pkg/metrics, the Go
// runtime and the process) in Prometheus's text format at /metrics on a
// listener of their own, never the API's: what they reveal (routes'
// traffic, memory) is for operators. Without an address nothing is
// served, and nothing is counted either. The returned function stops
// the listener.
func serveMetrics(lg *slog.Logger, addr string, level slog.Level) (stop func(), err error) {
	if addr == "" {
		metrics.SetEnabled(false)
		return func() {}, nil
	}
	metrics.SetEnabled(true)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", prom.Handler(metrics.Default))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      30 * time.Second,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			lg.Error("metrics listener stopped", "err", err)
		}
	}()
	// Like the API's address, always worth printing.
	lg.Log(context.Background(), max(slog.LevelInfo, level), "metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
