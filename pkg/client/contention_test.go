package client_test

import (
	"github.com/sheetlog/sheetlog/internal/apitest"
	"testing"
)

// TestContention: 8 writers × 40 appends on one sheet of a server over
// cmd/server's stores: every append lands once.
func TestContention(t *testing.T) {
	s := apitest.New(t, apitest.Options{Interval: 100, Workers: true})
	c := s.Client(t)
	r, err := c.RunContention(t.Context(), "hot", 8, 40)
	t.Log(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckContention(t.Context(), "hot", 8, 40); err != nil {
		t.Fatal(err)
	}
}
