package api

import (
	"net/url"
	"strconv"
)

// queryParams parses the query string and refuses names outside allowed
// and names given twice.
func (rq *request) queryParams(allowed ...string) (map[string]string, error) {
	raw := rq.r.URL.RawQuery
	out := map[string]string{}
	if raw == "" {
		return out, nil
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, validation("the query string is malformed: %v", err)
	}
	for name, vs := range vals {
		known := false
		for _, a := range allowed {
			if a == name {
				known = true
				break
			}
		}
		if !known {
			if len(allowed) == 0 {
				return nil, validation("query parameter %q is not known; this endpoint takes none", truncate(name, 80))
			}
			return nil, validation("query parameter %q is not known; this endpoint takes %v", truncate(name, 80), allowed)
		}
		if len(vs) != 1 {
			return nil, validation("query parameter %q is given %d times", name, len(vs))
		}
		out[name] = vs[0]
	}
	return out, nil
}

// parseID parses a sequence id written as decimal digits (no sign, no
// spaces), as in query parameters and the string form of request ids.
func parseID(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}
