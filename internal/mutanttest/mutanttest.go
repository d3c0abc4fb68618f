// Package mutanttest runs a conformance suite against deliberately broken
// implementations, each in a child process of the test binary (a failing
// suite cannot be observed from inside the test that runs it), and says
// which subtest caught each one.
package mutanttest

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Mutant is one broken implementation: its name (passed to the child in
// the environment), the part of the suite to run ("" for all of it, else
// a subtest path below the suite's test) and the subtest that must catch
// it ("" for any).
type Mutant struct {
	Name, Only, CaughtBy string
}

// Child reports whether this process is a child started by Run, and the
// mutant it must build.
func Child(env string) (string, bool) {
	name := os.Getenv(env)
	return name, name != ""
}

// Run runs suite (the name of the test function that runs the suite on
// the mutant named by env) once per mutant, in a child process with
// -test.failfast, and fails unless the suite fails there, in the subtest
// the mutant names. Property tests run 1,000 cases, which finds these
// bugs nearly always and costs nothing when one is found early.
func Run(t *testing.T, env, suite string, mutants []Mutant) {
	t.Helper()
	failLine := regexp.MustCompile(`--- FAIL: ` + regexp.QuoteMeta(suite) + `/(\S+)`)
	for _, m := range mutants {
		name, run := m.Name, "^"+suite+"$"
		if m.Only != "" {
			name += "_in_" + strings.ReplaceAll(m.Only, "/", "_")
			for _, part := range strings.Split(m.Only, "/") {
				run += "/^" + part + "$"
			}
		}
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.failfast", "-test.count=1", "-test.timeout=3m",
				"-rapid.nofailfile", "-rapid.shrinktime=1ms", "-rapid.checks=1000")
			cmd.Env = append(os.Environ(), env+"="+m.Name, "TMPDIR="+t.TempDir())
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("the suite did not catch mutant %s (err %v):\n%s", m.Name, err, out)
			}
			all := failLine.FindAllSubmatch(out, -1)
			if len(all) == 0 || strings.Contains(string(out), "panic:") {
				t.Fatalf("the suite crashed on mutant %s instead of failing a test:\n%s", m.Name, out)
			}
			// Go prints a parent's FAIL line before its children's: the
			// last one is the subtest that failed.
			caught := string(all[len(all)-1][1])
			if m.CaughtBy != "" && caught != m.CaughtBy && !strings.HasPrefix(caught, m.CaughtBy+"/") {
				t.Fatalf("mutant %s was caught by %s, want %s:\n%s", m.Name, caught, m.CaughtBy, out)
			}
			t.Logf("caught by %s", caught)
		})
	}
}
