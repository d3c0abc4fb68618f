package continuation

import (
	"errors"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/errs"
)

func TestSealOpen(t *testing.T) {
	s := NewSealer([]byte("key"), "test v1")
	scope := []string{"sheet", "a", "b"}
	tok := s.Seal(scope, "last name")
	if pos, err := s.Open(scope, tok); err != nil || pos != "last name" {
		t.Fatalf("Open = %q, %v", pos, err)
	}
	refused := func(what string, scope []string, tok string, sealer Sealer) {
		t.Helper()
		var nc *errs.NoContinuationError
		if _, err := sealer.Open(scope, tok); !errors.As(err, &nc) {
			t.Errorf("%s: got %v, want NoContinuationError", what, err)
		}
	}
	refused("other directory", []string{"sheet", "a"}, tok, s)
	refused("shifted fields", []string{"sheet", "ab"}, tok, s)
	refused("other sheet", []string{"other", "a", "b"}, tok, s)
	refused("other key", scope, tok, NewSealer([]byte("other"), "test v1"))
	refused("other domain", scope, tok, NewSealer([]byte("key"), "test v2"))
	refused("empty", scope, "", s)
	refused("garbage", scope, "not base64 !", s)
	for i := range tok {
		b := []byte(tok)
		b[i] ^= 1
		refused("flipped byte", scope, string(b), s)
	}
	refused("truncated", scope, tok[:len(tok)-1], s)
	refused("extended", scope, tok+"A", s)
}
