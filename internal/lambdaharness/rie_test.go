package lambdaharness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rieBinary finds the emulator that `make rie` installs (or $SHEETLOG_RIE).
// Outside CI a missing emulator skips the test loudly; in CI it fails.
func rieBinary(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SHEETLOG_RIE")
	if p == "" {
		dir, _ := os.Getwd()
		for ; dir != filepath.Dir(dir); dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				p = filepath.Join(dir, "bin", "aws-lambda-rie")
				break
			}
		}
	}
	if st, err := os.Stat(p); err != nil || st.IsDir() {
		msg := fmt.Sprintf("the Lambda Runtime Interface Emulator is not installed at %q: run `make rie` (or `make test`)", p)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		fmt.Fprintf(os.Stderr, "\n!!!!!!!! SKIPPED: %s\n\n", msg)
		t.Skip(msg)
	}
	return p
}

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// probe builds testdata/probe as a Lambda bootstrap, once per test binary.
func probe(t *testing.T) string {
	t.Helper()
	probeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "probe-")
		if err != nil {
			probeErr = err
			return
		}
		probePath = filepath.Join(dir, "bootstrap")
		cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", probePath, "./testdata/probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("building the probe function: %v\n%s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

func startProbe(t *testing.T, instances int, timeout time.Duration) *Function {
	t.Helper()
	fn, err := StartFunction(context.Background(), rieBinary(t), FunctionSpec{
		Name: "probe", Binary: probe(t), Env: map[string]string{"PROBE": "hello"},
		Timeout: timeout, Instances: instances, LogDir: t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fn.Stop)
	return fn
}

func invoke(t *testing.T, fn *Function, op string, ms int) Result {
	t.Helper()
	res, err := fn.Invoke(context.Background(), []byte(fmt.Sprintf(`{"op":%q,"ms":%d}`, op, ms)))
	if err != nil {
		t.Fatalf("invoking %s: %v\n%s", op, err, fn.Tail())
	}
	return res
}

// What the emulator answers for a reply, a handler error, a panic and a
// timeout, and that the pool replaces an emulator whose function died.
func TestRIEOutcomes(t *testing.T) {
	fn := startProbe(t, 1, time.Second)
	res := invoke(t, fn, "echo", 0)
	var got map[string]string
	if err := json.Unmarshal(res.Body, &got); err != nil || res.Failed() || got["probe"] != "hello" {
		t.Fatalf("echo: %+v %s", res, res.Body)
	}
	if res := invoke(t, fn, "error", 0); res.Status != http.StatusOK || res.FunctionError != "failed on purpose" {
		t.Fatalf("handler error: %+v %s", res, res.Body)
	}
	if res := invoke(t, fn, "panic", 0); res.Status != http.StatusBadGateway || !res.Failed() {
		t.Fatalf("panic: %+v %s", res, res.Body)
	}
	if res := invoke(t, fn, "echo", 0); res.Failed() {
		t.Fatalf("after a panic: %+v %s\n%s", res, res.Body, fn.Tail())
	}
	if res := invoke(t, fn, "sleep", 3000); !strings.Contains(res.FunctionError, "Task timed out") {
		t.Fatalf("timeout: %+v %s", res, res.Body)
	}
	if res := invoke(t, fn, "echo", 0); res.Failed() {
		t.Fatalf("after a timeout: %+v %s\n%s", res, res.Body, fn.Tail())
	}
	st := fn.Stats()
	if st.Invocations != 6 || st.FunctionErrors != 3 || st.Restarts < 2 || len(st.InitDurations) < 1 || st.InitDurations[0] <= 0 {
		t.Errorf("stats %+v", st)
	}
}

// Concurrent invocations never reach one emulator twice at once (which
// crashes it): a pool of two serves six at once, two at a time.
func TestRIEPool(t *testing.T) {
	fn := startProbe(t, 2, 10*time.Second)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := fn.Invoke(context.Background(), []byte(`{"op":"sleep","ms":300}`))
			if err == nil && res.Failed() {
				err = fmt.Errorf("function error %s", res.FunctionError)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err, fn.Tail())
		}
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("six 300 ms invocations on two emulators took %v: more than two ran at once", d)
	}
	if st := fn.Stats(); st.Restarts != 0 || len(st.InitDurations) != 2 {
		t.Errorf("stats %+v", st)
	}
}
