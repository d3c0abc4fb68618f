package eventlog

import "testing"

func TestValidateEntryShapes(t *testing.T) {
	for body, ok := range map[string]bool{
		`{"type":"X"}`: true, ` {"type":"X","a":{"pending":1}} `: true,
		`{"type":""}`: false, `{"type":1}`: false, `{}`: false, `[]`: false, ``: false,
		`{"type":"X","pending":"s"}`: false, `{"type":"X"} {}`: false, `{"type":"X",}`: false,
	} {
		if err := ValidateEntry(Entry{Body: []byte(body)}); (err == nil) != ok {
			t.Errorf("%q: %v", body, err)
		}
	}
}
