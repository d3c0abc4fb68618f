package lambdaharness

import (
	"testing"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// Records in the JSON shape Lambda delivers (typed attribute values).
const (
	insertPending = `{"eventID":"1","eventName":"INSERT","eventSource":"aws:dynamodb","dynamodb":{
		"Keys":{"sheet":{"S":"s"},"seq":{"N":"50"}},
		"NewImage":{"sheet":{"S":"s"},"seq":{"N":"50"},"body":{"S":"{}"},"pending":{"S":"snapshot"},"pendingSince":{"N":"1700000000000"}},
		"SequenceNumber":"100","StreamViewType":"NEW_AND_OLD_IMAGES"}}`
	insertPlain = `{"eventName":"INSERT","dynamodb":{"Keys":{"sheet":{"S":"s"},"seq":{"N":"51"}},
		"NewImage":{"sheet":{"S":"s"},"seq":{"N":"51"},"body":{"S":"{}"}},"SequenceNumber":"101"}}`
	completion = `{"eventName":"MODIFY","dynamodb":{"Keys":{"sheet":{"S":"s"},"seq":{"N":"50"}},
		"OldImage":{"sheet":{"S":"s"},"seq":{"N":"50"},"pending":{"S":"snapshot"}},
		"NewImage":{"sheet":{"S":"s"},"seq":{"N":"50"},"snapshot":{"S":"50"}},"SequenceNumber":"102"}}`
	head = `{"eventName":"MODIFY","dynamodb":{"Keys":{"sheet":{"S":"s"},"seq":{"N":"-1"}},
		"NewImage":{"sheet":{"S":"s"},"seq":{"N":"-1"},"next":{"N":"52"}},"SequenceNumber":"103"}}`
	removed = `{"eventName":"REMOVE","dynamodb":{"Keys":{"sheet":{"S":"s"},"seq":{"N":"50"}},
		"OldImage":{"sheet":{"S":"s"},"seq":{"N":"50"},"pending":{"S":"snapshot"}},"SequenceNumber":"104"}}`
)

func match(t *testing.T, pattern, event string) bool {
	t.Helper()
	f, err := CompileFilter(pattern)
	if err != nil {
		t.Fatalf("compile %s: %v", pattern, err)
	}
	ok, err := f.Match([]byte(event))
	if err != nil {
		t.Fatalf("match: %v", err)
	}
	return ok
}

// The deployed filter lets through exactly the records whose new image
// has pending: not plain appends, completions, heads or removals.
func TestDeployedFilter(t *testing.T) {
	for ev, want := range map[string]bool{insertPending: true, insertPlain: false, completion: false, head: false, removed: false} {
		if got := match(t, awsschema.StreamFilterPattern, ev); got != want {
			t.Errorf("deployed filter on %.60s...: %v, want %v", ev, got, want)
		}
	}
}

// "exists" looks at leaf values only: on an attribute (an object of its
// type) it matches nothing, which is why the deployed filter names "S".
func TestExistsOnlyOnLeaves(t *testing.T) {
	if match(t, `{"dynamodb":{"NewImage":{"pending":[{"exists":true}]}}}`, insertPending) {
		t.Error(`exists:true on the attribute object matched; Lambda's would not`)
	}
	if !match(t, `{"dynamodb":{"NewImage":{"pending":[{"exists":false}]}}}`, insertPending) {
		t.Error(`exists:false on the attribute object did not match; Lambda's would`)
	}
	if !match(t, `{"dynamodb":{"NewImage":{"history":{"S":[{"exists":false}]}}}}`, insertPending) {
		t.Error("exists:false on an absent leaf did not match")
	}
}

func TestFilterOperators(t *testing.T) {
	for _, c := range []struct {
		pattern string
		want    bool
	}{
		{`{"eventName":["INSERT"]}`, true},
		{`{"eventName":["MODIFY","REMOVE"]}`, false},
		{`{"eventName":["INSERT"],"dynamodb":{"Keys":{"sheet":{"S":["t"]}}}}`, false},
		{`{"dynamodb":{"NewImage":{"pending":{"S":["snapshot"]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"pending":{"S":[{"prefix":"snap"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"pending":{"S":[{"suffix":"shot"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"pending":{"S":[{"equals-ignore-case":"SNAPSHOT"}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"pending":{"S":[{"anything-but":"snapshot"}]}}}}`, false},
		{`{"dynamodb":{"NewImage":{"pending":{"S":[{"anything-but":["x","y"]}]}}}}`, true},
		{`{"dynamodb":{"NewImage":{"history":{"S":[{"anything-but":"x"}]}}}}`, false},
		// Numbers in DynamoDB JSON are strings: a numeric rule on "N"
		// does not match them (one of the known pitfalls).
		{`{"dynamodb":{"Keys":{"seq":{"N":[{"numeric":[">",10]}]}}}}`, false},
		{`{"dynamodb":{"SequenceNumber":[{"numeric":[">",10]}]}}`, false},
		{`{"dynamodb":{"NewImage":{"seq":{"N":["50"]}}}}`, true},
		{`{"dynamodb":{"StreamViewType":["NEW_AND_OLD_IMAGES"],"Keys":{"seq":{"N":["50","51"]}}}}`, true},
	} {
		if got := match(t, c.pattern, insertPending); got != c.want {
			t.Errorf("%s: %v, want %v", c.pattern, got, c.want)
		}
	}
	num := `{"a":5,"b":[1,"x",null],"c":true}`
	for _, c := range []struct {
		pattern string
		want    bool
	}{
		{`{"a":[{"numeric":[">",4,"<=",5]}]}`, true},
		{`{"a":[{"numeric":["<",5]}]}`, false},
		{`{"a":[5.0]}`, true},
		{`{"a":["5"]}`, false},
		{`{"b":["x"]}`, true},
		{`{"b":[null]}`, true},
		{`{"b":[2]}`, false},
		{`{"c":[true]}`, true},
		{`{"d":[{"exists":false}],"c":[true]}`, true},
	} {
		if got := match(t, c.pattern, num); got != c.want {
			t.Errorf("%s on %s: %v, want %v", c.pattern, num, got, c.want)
		}
	}
}

func TestFilterRefusesWhatItCannotEvaluate(t *testing.T) {
	for _, p := range []string{
		``, `[]`, `{}`, `{"a":1}`, `{"a":[]}`, `{"a":{}}`,
		`{"a":[{"wildcard":"x*"}]}`, `{"a":[{"exists":"yes"}]}`, `{"a":[{"numeric":["~",1]}]}`,
		`{"a":[{"prefix":1}]}`, `{"a":[{"anything-but":{"prefix":"x"}}]}`, `{"a":[{"exists":true,"prefix":"x"}]}`,
		`{"a":["x"]} trailing`,
	} {
		if _, err := CompileFilter(p); err == nil {
			t.Errorf("pattern %q compiled", p)
		}
	}
}
