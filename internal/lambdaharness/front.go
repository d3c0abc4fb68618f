package lambdaharness

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sheetlog/sheetlog/internal/apigw"
)

// Invoker runs one invocation of a function.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (Result, error)
}

// MaxFrontBody is the largest request body the front accepts; API
// Gateway's HTTP APIs take 10 MB.
const MaxFrontBody = 10 << 20

// Front is a local stand-in for the API Gateway HTTP API in front of the
// API Lambda: each plain HTTP request becomes a payload-2.0 event (with
// rawPath decoded, as HTTP APIs send it), the function's reply becomes the
// HTTP response. Like API Gateway it answers 500 {"message":"Internal
// Server Error"} when the function fails, and 413 for bodies over 10 MB.
type Front struct {
	Fn  Invoker
	Log *slog.Logger
	// Style of rawPath (default apigw.DecodedPath, as an HTTP API).
	Style apigw.PathStyle
	// Auth, when set, runs before the function, as API Gateway's
	// authorizer does (see JWTOptions).
	Auth Authorizer
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFrontBody))
	if err != nil {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := apigw.Event(r, body, f.Style)
	if f.Auth != nil && !f.Auth.Authorize(w, r, &ev) {
		return
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	res, err := f.Fn.Invoke(r.Context(), payload)
	if err != nil || res.Failed() {
		f.log().Error("front: the function failed", "method", r.Method, "path", r.URL.Path,
			"status", res.Status, "functionError", res.FunctionError, "err", err)
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(res.Body, &resp); err != nil || resp.StatusCode == 0 {
		f.log().Error("front: the function's reply is not an HTTP API response", "body", truncate(string(res.Body), 300))
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if err := apigw.WriteResponse(w, resp); err != nil {
		f.log().Error("front: writing the response", "err", err)
	}
}

func (f *Front) log() *slog.Logger {
	if f.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return f.Log
}

func gatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"message":"` + msg + `"}`))
}

// InvokerFunc is a function that handles invocations (tests, in-process
// functions).
type InvokerFunc func(ctx context.Context, payload []byte) (Result, error)

// Invoke implements Invoker.
func (f InvokerFunc) Invoke(ctx context.Context, payload []byte) (Result, error) {
	return f(ctx, payload)
}
