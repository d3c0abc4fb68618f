package eventlog

import (
	"bytes"
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"strings"
	"testing"
)

// plainSeeds are bodies on both sides of every rule plainBody checks.
var plainSeeds = []string{
	`{"type":"X"}`, ` {"type":"X","a":{"pending":1}} `, "\t{\r\n\"type\" : \"X\" }\n",
	`{"type":"SetCellValueAndFormat","row":12,"column":3,"value":-1.5e+7,"format":"0.00"}`,
	`{"type":"X","v":[1,[2,{"a":[]}],{},"s",true,false,null,-0,0.5,1E3]}`,
	`{"type":"X","v":{"type":"CellError","value":"#N/A"}}`,
	`{"type":""}`, `{"type":1}`, `{}`, `[]`, ``, `{"type":"X","pending":"s"}`, `{"type":"X"} {}`,
	`{"type":"X",}`, `{"type":"X","type":""}`, `{"type":"","type":"X"}`, `{"t\u0079pe":"X"}`,
	`{"type":"X","p\u0065nding":1}`, `{"type":"\u0041"}`, `{"type":"X","a":"\q"}`, `{"type":"X","a":01}`,
	`{"type":"X","a":1.}`, `{"type":"X","a":1e}`, `{"type":"X","a":tru}`, `{"type":"X","a":nul}`,
	`{"type":"X","a":[1,]}`, `{"type":"X","a":{"b"}}`, `{"type":"X","a":{"b":1,}}`, `{"type":"X","a":[}`,
	"{\"type\":\"X\",\"a\":\"\x01\"}", "{\"type\":\"X\",\"a\":\"\xff\"}", "{\"type\":\"\xe2\x82\xac\"}",
	`{"type":"X","a":"\u12"}`, `{"type":"X"`, `{"type":"X",`, `{"type"`, `{"type":"X" "a":1}`,
	`{"type":"X","a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`,
	`{"type":"X","a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`,
	`{"type":"X","a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`,
	`{"type":"X","a":12}`, `{"type":"X","a":12 ,"b":3}`, `{"type":"X","a":12`, `{"type":"X","a":12x}`,
	`{"type":"X","a":9.5}`, `{"longer than eight":1,"type":"X"}`, `{"type":"X","a"b":1}`,
}

// FuzzPlainBody checks plainBody against validateEntry: it accepts
// nothing validateEntry refuses, and (so that the fast path stays the
// common one) everything validateEntry accepts that is plain ASCII
// without escapes and nested no deeper than plainDepth.
func FuzzPlainBody(f *testing.F) {
	for _, s := range plainSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, err := plainBody(body), validateEntry(body)
		if fast && err != nil {
			t.Fatalf("plainBody accepts %q, which validateEntry refuses: %v", body, err)
		}
		if !fast && err == nil && isPlain(body) {
			t.Fatalf("plainBody refuses %q, which validateEntry accepts", body)
		}
	})
}

func TestPlainBodySeeds(t *testing.T) {
	for _, s := range plainSeeds {
		body := []byte(s)
		fast, err := plainBody(body), validateEntry(body)
		if fast && err != nil || !fast && err == nil && isPlain(body) {
			t.Errorf("%q: plainBody %v, validateEntry %v", s, fast, err)
		}
		if got := ValidateEntry(Entry{Body: body}); (got == nil) != (err == nil) || got != nil && got.Error() != err.Error() {
			t.Errorf("%q: ValidateEntry %v, validateEntry %v", s, got, err)
		}
	}
}

// isPlain reports whether body is ASCII without backslashes and its
// brackets (outside strings) nest at most plainDepth deep.
func isPlain(body []byte) bool {
	if bytes.IndexByte(body, '\\') >= 0 {
		return false
	}
	depth, inString := 0, false
	for _, c := range body {
		switch {
		case c >= 0x80:
			return false
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			// The body's own object is not a level of plainDepth.
			if depth++; depth > plainDepth+1 {
				return false
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return true
}

func TestPlainBodyAllocatesNothing(t *testing.T) {
	body := []byte(`{"type":"SetCellValueAndFormat","row":12,"column":3,"value":"x","format":"0.00"}`)
	if n := testing.AllocsPerRun(100, func() {
		if err := ValidateEntry(Entry{Body: body}); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("ValidateEntry allocates %v times per body", n)
	}
}

// TestSpecialBytes checks the eight-byte test against the byte table:
// every byte value at every position among plain bytes, and random words
// (mostly plain bytes, so that words with one or two odd bytes are
// common). The lowest flagged byte must be the first one not plainByte.
func TestSpecialBytes(t *testing.T) {
	check := func(w [8]byte) {
		want := 8
		for i, c := range w {
			if !plainByte[c] {
				want = i
				break
			}
		}
		got := 8
		if m := specialBytes(binary.LittleEndian.Uint64(w[:])); m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if got != want {
			t.Fatalf("specialBytes(%q) flags byte %d first, want %d", w[:], got, want)
		}
	}
	for pos := range 8 {
		for c := range 256 {
			w := [8]byte{'a', '~', ' ', '!', '#', '[', ']', '}'}
			w[pos] = byte(c)
			check(w)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1 << 20 {
		var w [8]byte
		for i := range w {
			if rng.IntN(4) == 0 {
				w[i] = byte(rng.IntN(256))
			} else {
				w[i] = byte(0x20 + rng.IntN(0x60))
			}
		}
		check(w)
	}
}
