package main

import (
	"testing"

	sheetlog "github.com/sheetlog/sheetlog/pkg/client"
)

// TestContention runs 8 thin clients (pkg/client) appending 40 entries
// each to one sheet of the real server binary at once: every append
// lands exactly once, whoever wins each id.
func TestContention(t *testing.T) {
	p := startServer(t, t.TempDir())
	c, err := sheetlog.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.RunContention(t.Context(), "hot", 8, 40)
	t.Log(r)
	if err != nil {
		t.Fatalf("%v\n%s", err, p.log())
	}
	if err := c.CheckContention(t.Context(), "hot", 8, 40); err != nil {
		t.Fatal(err)
	}
}
