package api

import (
	"net/url"
	"strings"

	"github.com/sheetlog/sheetlog/pkg/sheetid"
)

type handlerFunc func(h *handler, rq *request)

// route is one path pattern and the methods it serves.
type route struct {
	pattern  string
	handlers map[string]handlerFunc
	allowHdr string
}

func (rt *route) allow() string { return rt.allowHdr }

func newRoute(pattern string, get, post handlerFunc) *route {
	rt := &route{pattern: pattern, handlers: map[string]handlerFunc{}}
	methods := []string{}
	if get != nil {
		rt.handlers["GET"] = get
		methods = append(methods, "GET", "HEAD")
	}
	if post != nil {
		rt.handlers["POST"] = post
		methods = append(methods, "POST")
	}
	rt.allowHdr = strings.Join(append(methods, "OPTIONS"), ", ")
	return rt
}

var (
	routeHealth   = newRoute("/healthz", (*handler).health, nil)
	routeOpenAPI  = newRoute("/v1/openapi.yaml", (*handler).openAPI, nil)
	routeStatus   = newRoute("/v1/sheets/{sheet}", (*handler).status, nil)
	routeLog      = newRoute("/v1/sheets/{sheet}/log", (*handler).getLog, (*handler).postLog)
	routeCells    = newRoute("/v1/sheets/{sheet}/cells", (*handler).cells, nil)
	routeBlobRoot = newRoute("/v1/sheets/{sheet}/blobs/", (*handler).listBlobs, nil)
	routeBlob     = newRoute("/v1/sheets/{sheet}/blobs/{path}", (*handler).readBlob, nil)
	routeBlobList = newRoute("/v1/sheets/{sheet}/blobs/{path}/", (*handler).listBlobs, nil)
	sheetsPrefix  = "/v1/sheets/"
)

// match holds the still-escaped parameters of a route.
type match struct {
	sheet string
	// blob is the blob path's segments, still escaped; nil for the root.
	blob []string
}

// matchRoute finds the route of an escaped path. It works on the escaped
// form so that "%2F" inside a segment stays part of that segment (and is
// then refused as a blob name) instead of splitting it.
func matchRoute(path string) (*route, match) {
	switch path {
	case "/healthz":
		return routeHealth, match{}
	case "/v1/openapi.yaml":
		return routeOpenAPI, match{}
	}
	rest, ok := strings.CutPrefix(path, sheetsPrefix)
	if !ok {
		return nil, match{}
	}
	sheet, rest, more := strings.Cut(rest, "/")
	m := match{sheet: sheet}
	if !more {
		return routeStatus, m
	}
	switch {
	case rest == "log":
		return routeLog, m
	case rest == "cells":
		return routeCells, m
	case rest == "blobs/":
		return routeBlobRoot, m
	}
	p, ok := strings.CutPrefix(rest, "blobs/")
	if !ok {
		return nil, match{}
	}
	if l, ok := strings.CutSuffix(p, "/"); ok {
		m.blob = strings.Split(l, "/")
		return routeBlobList, m
	}
	m.blob = strings.Split(p, "/")
	return routeBlob, m
}

// sheetParam validates the route's sheet id and records it for the log.
func (rq *request) sheetParam() (string, error) {
	s, err := url.PathUnescape(rq.m.sheet)
	if err != nil {
		return "", validation("sheet id %q is not a valid URL path segment", truncate(rq.m.sheet, 80))
	}
	if err := sheetid.Validate(s); err != nil {
		return "", err
	}
	rq.sheet = s
	return s, nil
}
