package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sheetlog/sheetlog/pkg/metrics"
)

// The API's metrics, the same in every deployment (docs/operations.md).
// Labels take their values from fixed sets only: the route's pattern
// (never the path, which holds sheet ids), the method folded to the ones
// the API serves, and the status code.
var (
	httpRequests = metrics.NewCounterVec("sheetlog_http_requests_total",
		"Requests the API answered, by route pattern, method and status code.",
		"route", "method", "code")
	httpDuration = metrics.NewHistogramVec("sheetlog_http_request_duration_seconds",
		"Time from a request reaching the API handler to its reply being written, by route pattern and method.",
		"route", "method")
)

// Route labels besides the patterns: requests no route matches, and
// change feed requests, whose time is mostly the wait they asked for and
// would swamp the durations of plain log reads.
const (
	unmatchedRoute = "unmatched"
	feedRoute      = "/v1/sheets/{sheet}/log?wait"
)

// metricsRoute is the request's route label.
func (rq *request) metricsRoute() string {
	switch {
	case rq.rt == nil:
		return unmatchedRoute
	case rq.held:
		return feedRoute
	}
	return rq.rt.pattern
}

// codeText holds the status codes as label values, so that counting
// converts no number.
var codeText = func() []string {
	t := make([]string, 600)
	for i := range t {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

// methodLabel folds the method into a bounded set.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions:
		return m
	}
	return "other"
}

// observeRequest counts one answered request.
func observeRequest(route, method string, status int, d time.Duration) {
	code := "other"
	if status >= 0 && status < len(codeText) {
		code = codeText[status]
	}
	method = methodLabel(method)
	httpRequests.With(route, method, code).Inc()
	httpDuration.With(route, method).Observe(d)
}
