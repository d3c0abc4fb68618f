package emf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Datum is one metric of one dimension set, as CloudWatch Logs would
// extract it from a document.
type Datum struct {
	Namespace string
	Name      string
	Unit      string
	// Dims maps each dimension of the set to its value.
	Dims map[string]string
	// Values of the metric in this document.
	Values    []float64
	Timestamp time.Time
}

// Sum of the values.
func (d Datum) Sum() float64 {
	var s float64
	for _, v := range d.Values {
		s += v
	}
	return s
}

var unitRE = regexp.MustCompile(`^(Seconds|Microseconds|Milliseconds|Bytes|Kilobytes|Megabytes|Gigabytes|Terabytes|Bits|Kilobits|Megabits|Gigabits|Terabits|Percent|Count|Bytes/Second|Kilobytes/Second|Megabytes/Second|Gigabytes/Second|Terabytes/Second|Bits/Second|Kilobits/Second|Megabits/Second|Gigabits/Second|Terabits/Second|Count/Second|None)$`)

// Parse reads one log line. A line that is not a JSON object with an
// "_aws" member is ErrNotEMF; one that has it but breaks the format's
// rules (the specification's MUSTs: a timestamp, namespaces, at most 9
// dimensions per set and 100 metrics per directive, dimension members
// that are strings, metric members that are numbers or arrays of at most
// 100 numbers, valid units) is another error. Lambda may prefix a line
// with its own fields; lines are taken as the function wrote them here.
func Parse(line []byte) ([]Datum, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] != '{' || !bytes.Contains(line, []byte(`"_aws"`)) {
		return nil, ErrNotEMF
	}
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		return nil, ErrNotEMF
	}
	raw, ok := root["_aws"]
	if !ok {
		return nil, ErrNotEMF
	}
	var meta struct {
		Timestamp         *int64
		CloudWatchMetrics *[]struct {
			Namespace  *string
			Dimensions *[][]string
			Metrics    *[]struct {
				Name *string
				Unit *string
			}
		}
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("emf: _aws: %w", err)
	}
	if meta.Timestamp == nil || meta.CloudWatchMetrics == nil {
		return nil, fmt.Errorf("emf: _aws needs Timestamp and CloudWatchMetrics")
	}
	ts := time.UnixMilli(*meta.Timestamp)
	str := func(name string) (string, error) {
		var s string
		v, ok := root[name]
		if !ok {
			return "", fmt.Errorf("emf: dimension %q is not a member of the document", name)
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("emf: dimension %q is not a string", name)
		}
		if strings.TrimSpace(s) == "" {
			return "", fmt.Errorf("emf: dimension %q is empty", name)
		}
		return s, nil
	}
	values := func(name string) ([]float64, error) {
		v, ok := root[name]
		if !ok {
			return nil, fmt.Errorf("emf: metric %q is not a member of the document", name)
		}
		var one float64
		if json.Unmarshal(v, &one) == nil {
			return []float64{one}, nil
		}
		var many []float64
		if err := json.Unmarshal(v, &many); err != nil {
			return nil, fmt.Errorf("emf: metric %q is neither a number nor an array of numbers", name)
		}
		if len(many) > MaxValues {
			return nil, fmt.Errorf("emf: metric %q has %d values, at most %d", name, len(many), MaxValues)
		}
		for _, x := range many {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("emf: metric %q has a value that is not finite", name)
			}
		}
		return many, nil
	}
	var out []Datum
	for i, dir := range *meta.CloudWatchMetrics {
		switch {
		case dir.Namespace == nil || *dir.Namespace == "" || len(*dir.Namespace) > 255:
			return nil, fmt.Errorf("emf: directive %d: Namespace must be 1 to 255 characters", i)
		case dir.Dimensions == nil || len(*dir.Dimensions) == 0:
			return nil, fmt.Errorf("emf: directive %d: Dimensions must hold at least one set", i)
		case dir.Metrics == nil || len(*dir.Metrics) > 100:
			return nil, fmt.Errorf("emf: directive %d: Metrics must hold at most 100 definitions", i)
		}
		for _, set := range *dir.Dimensions {
			if len(set) > 9 {
				return nil, fmt.Errorf("emf: directive %d: a dimension set holds %d keys, at most 9", i, len(set))
			}
			dims := map[string]string{}
			for _, k := range set {
				v, err := str(k)
				if err != nil {
					return nil, err
				}
				dims[k] = v
			}
			for _, m := range *dir.Metrics {
				if m.Name == nil || *m.Name == "" {
					return nil, fmt.Errorf("emf: directive %d: a metric without a Name", i)
				}
				unit := "None"
				if m.Unit != nil {
					if !unitRE.MatchString(*m.Unit) {
						return nil, fmt.Errorf("emf: metric %q: unit %q is not a CloudWatch unit", *m.Name, *m.Unit)
					}
					unit = *m.Unit
				}
				vals, err := values(*m.Name)
				if err != nil {
					return nil, err
				}
				out = append(out, Datum{Namespace: *dir.Namespace, Name: *m.Name, Unit: unit, Dims: dims, Values: vals, Timestamp: ts})
			}
		}
	}
	return out, nil
}

// Key names a metric and its dimensions, as CloudWatch tells metrics
// apart: "name{dim=value,...}" with the dimensions sorted.
func (d Datum) Key() string {
	keys := make([]string, 0, len(d.Dims))
	for k := range d.Dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(d.Name)
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + d.Dims[k])
	}
	b.WriteByte('}')
	return b.String()
}

// ParseLines parses every EMF document among the lines of r (lines that
// are no EMF document are skipped) and fails on the first that breaks
// the format.
func ParseLines(r io.Reader) (docs int, data []Datum, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ds, err := Parse(sc.Bytes())
		switch {
		case errors.Is(err, ErrNotEMF):
			continue
		case err != nil:
			return docs, data, fmt.Errorf("%w: %.300s", err, sc.Text())
		}
		docs++
		data = append(data, ds...)
	}
	return docs, data, sc.Err()
}
