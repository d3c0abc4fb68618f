package lambdaharness

import (
	"context"
	"encoding/json"
	"fmt"
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

// MaxFunctionReply is the largest reply a synchronously invoked function
// may return: "For synchronous invocations, the maximum payload size is
// 6 MB" (https://docs.aws.amazon.com/lambda/latest/dg/API_Invoke.html).
// The emulator does not enforce it; the front does, so that a reply too
// large for Lambda fails here as it would there.
const MaxFunctionReply = 6 << 20

// Front is a local stand-in for the API Gateway HTTP API in front of the
// API Lambda: each plain HTTP request becomes a payload-2.0 event (with
// rawPath decoded, as HTTP APIs send it), the function's reply becomes the
// HTTP response. Like API Gateway it answers 500 {"message":"Internal
// Server Error"} when the function fails, and 413 for bodies over 10 MB;
// with CORS configured it answers preflight requests itself and sets the
// CORS headers of every other response (see CORS).
type Front struct {
	Fn  Invoker
	Log *slog.Logger
	// Style of rawPath (default apigw.DecodedPath, as an HTTP API).
	Style apigw.PathStyle
	// CORS is the API's CORS configuration; nil: none.
	CORS *CORS
	// Auth, when set, runs before the function, as API Gateway's
	// authorizer does (see JWTOptions).
	Auth Authorizer
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.CORS != nil && IsPreflight(r) {
		f.CORS.Preflight(w, r)
		return
	}
	if _, ok := apigw.GatewayPath(r.URL.EscapedPath()); !ok && f.Style == apigw.DecodedPath {
		// The gateway refuses a path it cannot decode twice.
		gatewayError(w, http.StatusBadRequest, "Bad Request")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFrontBody))
	if err != nil {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := apigw.Event(r, body, f.Style)
	// An authorizer's refusal carries no CORS headers: API Gateway adds
	// them to "the response from an integration"
	// (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-cors.html).
	if f.Auth != nil && !f.Auth.Authorize(w, r, &ev) {
		return
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	res, err := f.Fn.Invoke(r.Context(), payload)
	if err == nil && len(res.Body) > MaxFunctionReply {
		err = fmt.Errorf("the function's reply is %d bytes; Lambda refuses more than %d", len(res.Body), MaxFunctionReply)
	}
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
	if f.CORS != nil {
		f.CORS.Apply(&resp, r.Header.Get("Origin"))
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
