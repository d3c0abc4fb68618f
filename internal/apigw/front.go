package apigw

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// PathStyle says how an event carries the request path.
type PathStyle int

const (
	// DecodedPath is what an API Gateway HTTP API sends: rawPath
	// percent-decoded.
	DecodedPath PathStyle = iota
	// EscapedPath is what a Lambda function URL sends: rawPath as the
	// client wrote it.
	EscapedPath
)

// Event builds the payload-2.0 event a front door would send the function
// for r, whose body has already been read into body.
//
// With DecodedPath the path is GatewayPath's; the caller answers 400
// itself when GatewayPath refuses it, as the gateway does.
func Event(r *http.Request, body []byte, style PathStyle) events.APIGatewayV2HTTPRequest {
	now := time.Now()
	path := r.URL.EscapedPath()
	domain := r.Host
	if style == DecodedPath {
		if p, ok := GatewayPath(path); ok {
			path = p
		} else {
			path = r.URL.Path
		}
	} else {
		// What tells a function URL's event from an HTTP API's.
		domain = "local.lambda-url.us-east-1.on.aws"
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       "$default",
		RawPath:        path,
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     "$default",
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    requestID(),
			APIID:        "local",
			DomainName:   domain,
			DomainPrefix: strings.SplitN(domain, ".", 2)[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      path,
				Protocol:  r.Proto,
				SourceIP:  hostOnly(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
		},
	}
	for k, vs := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[lk] = strings.Join(vs, ",")
	}
	if r.Host != "" {
		ev.Headers["host"] = r.Host
	}
	if q, err := url.ParseQuery(r.URL.RawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if IsText(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// WriteResponse writes the function's reply to w as the front door
// would.
func WriteResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) error {
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return fmt.Errorf("the function's body is not valid base64: %w", err)
		}
		body = b
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return fmt.Errorf("the function answered status %d", resp.StatusCode)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(resp.StatusCode)
	_, err := w.Write(body)
	return err
}

func hostOnly(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
