package lambdaharness

import (
	"strings"
	"testing"
)

func TestEMFCollector(t *testing.T) {
	c := newEMFCollector()
	doc := func(fn string, v string) string {
		return `{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["function"]],"Metrics":[{"Name":"x_seconds","Unit":"Seconds"}]}]},"function":"` + fn + `","x_seconds":` + v + `}`
	}
	for _, l := range []string{
		`{"time":"…","level":"INFO","msg":"request"}`,
		`START RequestId: 1 Version: $LATEST`,
		doc("a", "[0.1,0.2,0.3]"),
		doc("a", "0.4"),
		doc("b", "1"),
		`{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"N","Dimensions":[["function"]],"Metrics":[{"Name":"y"}]}]},"function":"a"}`,
	} {
		c.line(l)
	}
	st := c.stats()
	if st.Documents != 3 || st.Invalid != 1 || !strings.Contains(st.FirstBad, `metric "y"`) {
		t.Fatalf("%d documents, %d invalid (%s)", st.Documents, st.Invalid, st.FirstBad)
	}
	a := st.Series["x_seconds{function=a}"]
	if a == nil || a.Count != 4 || a.Sum < 0.99 || a.Sum > 1.01 || a.Max != 0.4 || a.Last != 0.4 || a.P50 != 0.3 {
		t.Fatalf("series a: %+v", a)
	}
	if b := st.Series["x_seconds{function=b}"]; b == nil || b.Count != 1 {
		t.Fatalf("series b: %+v", b)
	}
	if r := emfReport(st); !strings.Contains(r, "x_seconds{function=a}: n=4 p50=300.0 ms") {
		t.Fatalf("report:\n%s", r)
	}
}
