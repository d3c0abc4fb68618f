package s3blob

import (
	"flag"
	"os"
	"strconv"
	"testing"

	"github.com/sheetlog/sheetlog/pkg/blobstore"
	"github.com/sheetlog/sheetlog/pkg/blobstore/blobstoretest"
)

// The conformance suite with pages of 2 (so pages often end on a common
// prefix), each store on a fresh bucket, once per emulator.
//
// The emulators run one after the other, not in parallel, because the
// suite's model test takes its number of runs from rapid's global flag,
// which a slow emulator lowers for its own run (see emulator.modelChecks).
func TestConformance(t *testing.T) {
	for _, em := range emulators(t) {
		t.Run(em.name, func(t *testing.T) {
			if em.modelChecks > 0 {
				defer setRapidChecks(t, em.modelChecks)()
			}
			blobstoretest.Run(t, func(t *testing.T) blobstore.Store {
				return newStore(t, em, Options{PageSize: 2})
			}, blobstoretest.Options{PageSize: 2})
		})
	}
}

// setRapidChecks sets rapid's number of checks to n, unless the person
// running the tests chose one (-rapid.checks or RAPID_CHECKS), and returns
// the function that restores it. No other test may run meanwhile.
func setRapidChecks(t *testing.T, n int) (restore func()) {
	f := flag.Lookup("rapid.checks")
	if f == nil || os.Getenv("RAPID_CHECKS") != "" {
		return func() {}
	}
	chosen := false
	flag.Visit(func(v *flag.Flag) { chosen = chosen || v.Name == f.Name })
	if chosen {
		return func() {}
	}
	old := f.Value.String()
	if err := f.Value.Set(strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	t.Logf("the model test runs %d checks on this emulator (-rapid.checks to change)", n)
	return func() { f.Value.Set(old) }
}
