package lambdaharness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Filter is a compiled event filter pattern, as an event source mapping
// applies it to each record before batching: the record (in the JSON shape
// the function receives) is delivered only if it matches.
//
// Supported, with Lambda's (EventBridge's) semantics: nested objects
// (every named field must match: AND), arrays of matchers at the leaves
// (any may match: OR), literal strings, numbers (compared as numbers),
// booleans and null, and the operators exists, prefix, suffix,
// equals-ignore-case, anything-but (a value or a list of values) and
// numeric (one or two comparisons). Anything else is refused when the
// pattern is compiled, so a pattern the harness cannot evaluate exactly is
// never half-applied.
//
// As in Lambda, matching is on leaf values only: an array in the record
// offers each of its elements, and an object is not a value, so
// {"a":[{"exists":true}]} does not match {"a":{"S":"x"}} (it needs
// {"a":{"S":[{"exists":true}]}}).
type Filter struct {
	rules []filterRule
}

type filterRule struct {
	path     string // keys joined by \x00
	matchers []matcher
}

type matcher interface {
	// match reports whether the rule holds for the leaf values found at
	// its path (none when the path is absent or not a leaf).
	match(values []any) bool
}

// CompileFilter compiles a pattern.
func CompileFilter(pattern string) (*Filter, error) {
	v, err := decodeJSON([]byte(pattern))
	if err != nil {
		return nil, fmt.Errorf("filter pattern: %w", err)
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) == 0 {
		return nil, fmt.Errorf("filter pattern must be a non-empty JSON object")
	}
	f := &Filter{}
	if err := f.compile(nil, obj); err != nil {
		return nil, fmt.Errorf("filter pattern: %w", err)
	}
	slices.SortFunc(f.rules, func(a, b filterRule) int { return strings.Compare(a.path, b.path) })
	return f, nil
}

func (f *Filter) compile(path []string, obj map[string]any) error {
	for k, v := range obj {
		p := append(slices.Clone(path), k)
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 0 {
				return fmt.Errorf("%s: empty object", strings.Join(p, "."))
			}
			if err := f.compile(p, v); err != nil {
				return err
			}
		case []any:
			if len(v) == 0 {
				return fmt.Errorf("%s: empty list of matchers", strings.Join(p, "."))
			}
			r := filterRule{path: strings.Join(p, "\x00")}
			for _, m := range v {
				cm, err := compileMatcher(m)
				if err != nil {
					return fmt.Errorf("%s: %w", strings.Join(p, "."), err)
				}
				r.matchers = append(r.matchers, cm)
			}
			f.rules = append(f.rules, r)
		default:
			return fmt.Errorf("%s: a leaf of a pattern must be a list of matchers, got %v", strings.Join(p, "."), v)
		}
	}
	return nil
}

func compileMatcher(m any) (matcher, error) {
	switch m := m.(type) {
	case nil, string, bool, json.Number:
		return equals{m}, nil
	case map[string]any:
		if len(m) != 1 {
			return nil, fmt.Errorf("an operator object must have exactly one key: %v", m)
		}
		for op, arg := range m {
			switch op {
			case "exists":
				b, ok := arg.(bool)
				if !ok {
					return nil, fmt.Errorf("exists takes true or false")
				}
				return exists(b), nil
			case "prefix", "suffix", "equals-ignore-case":
				s, ok := arg.(string)
				if !ok {
					return nil, fmt.Errorf("%s takes a string", op)
				}
				return stringOp{op, s}, nil
			case "anything-but":
				var vals []any
				if l, ok := arg.([]any); ok {
					vals = l
				} else {
					vals = []any{arg}
				}
				for _, v := range vals {
					switch v.(type) {
					case string, json.Number, bool, nil:
					default:
						return nil, fmt.Errorf("anything-but supports values and lists of values only")
					}
				}
				return anythingBut(vals), nil
			case "numeric":
				return compileNumeric(arg)
			}
			return nil, fmt.Errorf("unsupported operator %q", op)
		}
	}
	return nil, fmt.Errorf("unsupported matcher %v", m)
}

type equals struct{ v any }

func (e equals) match(values []any) bool {
	for _, v := range values {
		if sameValue(e.v, v) {
			return true
		}
	}
	return false
}

type exists bool

func (e exists) match(values []any) bool { return (len(values) > 0) == bool(e) }

type stringOp struct{ op, s string }

func (o stringOp) match(values []any) bool {
	for _, v := range values {
		s, ok := v.(string)
		if !ok {
			continue
		}
		switch {
		case o.op == "prefix" && strings.HasPrefix(s, o.s),
			o.op == "suffix" && strings.HasSuffix(s, o.s),
			o.op == "equals-ignore-case" && strings.EqualFold(s, o.s):
			return true
		}
	}
	return false
}

type anythingBut []any

func (a anythingBut) match(values []any) bool {
	for _, v := range values {
		if !slices.ContainsFunc(a, func(x any) bool { return sameValue(x, v) }) {
			return true
		}
	}
	return false
}

type numeric []numCmp

type numCmp struct {
	op string
	n  float64
}

func compileNumeric(arg any) (matcher, error) {
	l, ok := arg.([]any)
	if !ok || (len(l) != 2 && len(l) != 4) {
		return nil, fmt.Errorf("numeric takes one or two (operator, number) pairs")
	}
	var out numeric
	for i := 0; i < len(l); i += 2 {
		op, ok := l[i].(string)
		num, ok2 := l[i+1].(json.Number)
		if !ok || !ok2 {
			return nil, fmt.Errorf("numeric takes (operator, number) pairs")
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, fmt.Errorf("numeric operator %q", op)
		}
		n, err := num.Float64()
		if err != nil {
			return nil, err
		}
		out = append(out, numCmp{op, n})
	}
	return out, nil
}

func (c numeric) match(values []any) bool {
	for _, v := range values {
		num, ok := v.(json.Number)
		if !ok {
			continue
		}
		x, err := num.Float64()
		if err != nil || math.IsInf(x, 0) {
			continue
		}
		all := true
		for _, cmp := range c {
			var r bool
			switch cmp.op {
			case "=":
				r = x == cmp.n
			case "<":
				r = x < cmp.n
			case "<=":
				r = x <= cmp.n
			case ">":
				r = x > cmp.n
			case ">=":
				r = x >= cmp.n
			}
			all = all && r
		}
		if all {
			return true
		}
	}
	return false
}

// sameValue compares JSON leaf values; numbers by value.
func sameValue(a, b any) bool {
	an, aok := a.(json.Number)
	bn, bok := b.(json.Number)
	if aok || bok {
		if !aok || !bok {
			return false
		}
		x, err1 := strconv.ParseFloat(string(an), 64)
		y, err2 := strconv.ParseFloat(string(bn), 64)
		return err1 == nil && err2 == nil && x == y
	}
	return a == b
}

// Match reports whether the JSON document event matches.
func (f *Filter) Match(event []byte) (bool, error) {
	v, err := decodeJSON(event)
	if err != nil {
		return false, err
	}
	leaves := map[string][]any{}
	flatten(nil, v, leaves)
	for _, r := range f.rules {
		values := leaves[r.path]
		if !slices.ContainsFunc(r.matchers, func(m matcher) bool { return m.match(values) }) {
			return false, nil
		}
	}
	return true, nil
}

func flatten(path []string, v any, out map[string][]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			flatten(append(slices.Clone(path), k), x, out)
		}
	case []any:
		for _, x := range v {
			flatten(path, x, out)
		}
	default:
		k := strings.Join(path, "\x00")
		out[k] = append(out[k], v)
	}
}

func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}
