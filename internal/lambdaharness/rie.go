package lambdaharness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FunctionSpec describes one Lambda function to run under the Runtime
// Interface Emulator.
type FunctionSpec struct {
	// Name is the function's name (AWS_LAMBDA_FUNCTION_NAME, log names).
	Name string
	// Binary is the function's bootstrap executable, built for this
	// machine.
	Binary string
	// Env is the function's environment. Nothing else of the harness's
	// environment leaks in, so a developer's AWS profile is never used.
	Env map[string]string
	// Timeout is the function timeout (AWS_LAMBDA_FUNCTION_TIMEOUT).
	Timeout time.Duration
	// MemoryMB is reported to the function (AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
	MemoryMB int
	// Instances is the number of emulators: one emulator serves one
	// invocation at a time (two at once crash it), so this is the
	// function's concurrency. Default 1.
	Instances int
	// LogDir receives <name>-<n>.log, everything each emulator and its
	// function print. Empty: logs are kept in memory only (a tail).
	LogDir string
	// Emulator, when set, runs Binary: a user-mode CPU emulator such as
	// qemu-aarch64-static, for a bootstrap built for another architecture.
	Emulator string
}

// Result is the emulator's reply to one invocation.
type Result struct {
	// Status is the emulator's HTTP status: 200 for a reply or a handler
	// error, 502 when the function crashed (a panic).
	Status int
	Body   []byte
	// FunctionError is the errorMessage of a handler error, a timeout
	// ("Task timed out ...") or a crash; empty on success.
	FunctionError string
	ErrorType     string
	Duration      time.Duration
}

// Failed reports whether the invocation was a function error of any kind.
func (r Result) Failed() bool { return r.Status != http.StatusOK || r.FunctionError != "" }

// Function is a pool of emulators running one function.
type Function struct {
	spec    FunctionSpec
	rieBin  string
	idle    chan *emulator
	mu      sync.Mutex
	all     []*emulator
	started int
	stats   FunctionStats
	closed  bool
	emf     *emfCollector
}

// FunctionStats counts a function's invocations.
type FunctionStats struct {
	Invocations    int
	FunctionErrors int
	Restarts       int
	// InitDurations are the init phases reported by the emulators
	// ("INIT REPORT"), one per started function process.
	InitDurations []time.Duration
	// FirstInvoke and WarmInvoke are the round trips of the first
	// invocation of an emulator (which includes the function's init)
	// and the median of the later ones.
	FirstInvoke []time.Duration
	warm        []time.Duration
}

// WarmMedian is the median warm round trip.
func (s FunctionStats) WarmMedian() time.Duration {
	if len(s.warm) == 0 {
		return 0
	}
	w := append([]time.Duration(nil), s.warm...)
	sort.Slice(w, func(i, j int) bool { return w[i] < w[j] })
	return w[len(w)/2]
}

// StartFunction starts spec.Instances emulators of a function.
func StartFunction(ctx context.Context, rieBin string, spec FunctionSpec) (*Function, error) {
	if spec.Instances <= 0 {
		spec.Instances = 1
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	if spec.MemoryMB <= 0 {
		spec.MemoryMB = 512
	}
	rieBin, err := filepath.Abs(rieBin)
	if err != nil {
		return nil, err
	}
	f := &Function{spec: spec, rieBin: rieBin, idle: make(chan *emulator, spec.Instances), emf: newEMFCollector()}
	for range spec.Instances {
		e, err := f.startEmulator(ctx)
		if err != nil {
			f.Stop()
			return nil, err
		}
		f.idle <- e
	}
	return f, nil
}

// Name is the function's name.
func (f *Function) Name() string { return f.spec.Name }

// Stats returns a copy of the function's counters.
func (f *Function) Stats() FunctionStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.InitDurations = append([]time.Duration(nil), s.InitDurations...)
	s.FirstInvoke = append([]time.Duration(nil), s.FirstInvoke...)
	s.warm = append([]time.Duration(nil), s.warm...)
	return s
}

// Invoke runs one invocation on an idle emulator, waiting for one if all
// are busy. An emulator whose function crashed or timed out is replaced,
// as Lambda replaces an execution environment.
func (f *Function) Invoke(ctx context.Context, payload []byte) (Result, error) {
	var e *emulator
	select {
	case e = <-f.idle:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	// Once started, an invocation runs to its end whatever the caller
	// does (as on Lambda, where a client that hangs up does not stop the
	// function): an emulator handed back while still busy would crash on
	// the next invocation.
	res, err := e.invoke(context.WithoutCancel(ctx), payload, f.spec.Timeout)
	f.mu.Lock()
	f.stats.Invocations++
	if err == nil {
		if res.Failed() {
			f.stats.FunctionErrors++
		}
		if e.invocations == 1 {
			f.stats.FirstInvoke = append(f.stats.FirstInvoke, res.Duration)
		} else {
			f.stats.warm = append(f.stats.warm, res.Duration)
		}
	}
	f.mu.Unlock()
	broken := err != nil || res.Status == http.StatusBadGateway || strings.Contains(res.FunctionError, "Task timed out")
	if broken && !f.isClosed() {
		e.stop()
		f.forget(e)
		ne, serr := f.startEmulator(context.WithoutCancel(ctx))
		if serr != nil {
			return res, errors.Join(err, fmt.Errorf("restarting the %s emulator: %w", f.spec.Name, serr))
		}
		f.mu.Lock()
		f.stats.Restarts++
		f.mu.Unlock()
		e = ne
	}
	f.idle <- e
	return res, err
}

func (f *Function) forget(e *emulator) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.all {
		if x == e {
			f.all = append(f.all[:i], f.all[i+1:]...)
			return
		}
	}
}

func (f *Function) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Stop stops every emulator and its function process.
func (f *Function) Stop() {
	f.mu.Lock()
	f.closed = true
	all := f.all
	f.all = nil
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Add(1)
		go func() { defer wg.Done(); e.stop() }()
	}
	wg.Wait()
}

// Tail returns the last lines the function's emulators printed.
func (f *Function) Tail() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, e := range f.all {
		fmt.Fprintf(&b, "--- %s ---\n%s", e.name, e.tail.String())
	}
	return b.String()
}

type emulator struct {
	name        string
	addr        string
	cmd         *exec.Cmd
	client      *http.Client
	tail        *tailLines
	logFile     *os.File
	done        chan struct{}
	invocations int
	onInit      func(time.Duration)
	onLine      func(string)
}

var initReport = regexp.MustCompile(`INIT REPORT\(durationMs: ([0-9.]+)\)`)

func (f *Function) startEmulator(ctx context.Context) (*emulator, error) {
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		e, err := f.tryStart(ctx)
		if err == nil {
			return e, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func (f *Function) tryStart(ctx context.Context) (*emulator, error) {
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.started++
	n := f.started
	f.mu.Unlock()
	e := &emulator{
		name:   fmt.Sprintf("%s-%d", f.spec.Name, n),
		addr:   fmt.Sprintf("127.0.0.1:%d", ports[0]),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}},
		tail:   &tailLines{max: 300},
		done:   make(chan struct{}),
		onLine: f.emf.line,
	}
	e.onInit = func(d time.Duration) {
		f.mu.Lock()
		f.stats.InitDurations = append(f.stats.InitDurations, d)
		f.mu.Unlock()
	}
	bin, err := filepath.Abs(f.spec.Binary)
	if err != nil {
		return nil, err
	}
	if f.spec.Emulator != "" {
		// The emulator runs whatever it is handed: the RIE gets a
		// script that hands it the bootstrap.
		if bin, err = emulatedBootstrap(f.spec.Emulator, bin); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(f.rieBin,
		"--runtime-interface-emulator-address", e.addr,
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--log-level", "info",
		bin)
	cmd.Dir = filepath.Dir(bin)
	env := map[string]string{
		"PATH":                            "/usr/bin:/bin",
		"AWS_LAMBDA_FUNCTION_NAME":        f.spec.Name,
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(int(f.spec.Timeout.Seconds())),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.spec.MemoryMB),
		// The emulator's own defaults would invent a function named
		// test_function; and no shared AWS config is read.
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"TZ":                          "UTC",
	}
	for k, v := range f.spec.Env {
		env[k] = v
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	sort.Strings(cmd.Env)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	setProcAttrs(cmd)
	if f.spec.LogDir != "" {
		if err := os.MkdirAll(f.spec.LogDir, 0o755); err != nil {
			return nil, err
		}
		lf, err := os.Create(filepath.Join(f.spec.LogDir, e.name+".log"))
		if err != nil {
			return nil, err
		}
		e.logFile = lf
	}
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("starting the emulator for %s: %w", f.spec.Name, err)
	}
	e.cmd = cmd
	go e.readOutput(pr)
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(e.done)
	}()
	if err := e.waitReady(ctx, 10*time.Second); err != nil {
		e.stop()
		return nil, fmt.Errorf("%s: %w\n%s", e.name, err, e.tail.String())
	}
	f.mu.Lock()
	f.all = append(f.all, e)
	f.mu.Unlock()
	return e, nil
}

func (e *emulator) readOutput(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		e.tail.add(line)
		e.onLine(line)
		if e.logFile != nil {
			fmt.Fprintln(e.logFile, line)
		}
		if m := initReport.FindStringSubmatch(line); m != nil {
			if ms, err := strconv.ParseFloat(m[1], 64); err == nil {
				e.onInit(time.Duration(ms * float64(time.Millisecond)))
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (e *emulator) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", e.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-e.done:
			return errors.New("the emulator exited at start")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the emulator did not listen on %s within %v", e.addr, limit)
		}
	}
}

func (e *emulator) invoke(ctx context.Context, payload []byte, timeout time.Duration) (Result, error) {
	e.invocations++
	// The emulator enforces the function timeout itself; this bound only
	// catches an emulator that hangs.
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+e.addr+"/2015-03-31/functions/function/invocations", bytes.NewReader(payload))
	if err != nil {
		return Result{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := e.client.Do(req)
	if err != nil {
		return Result{}, fmt.Errorf("invoking %s: %w", e.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Result{}, fmt.Errorf("reading the reply of %s: %w", e.name, err)
	}
	res := Result{Status: resp.StatusCode, Body: body, Duration: time.Since(start)}
	var fe struct {
		ErrorMessage *string `json:"errorMessage"`
		ErrorType    string  `json:"errorType"`
	}
	if json.Unmarshal(body, &fe) == nil && fe.ErrorMessage != nil {
		res.FunctionError, res.ErrorType = *fe.ErrorMessage, fe.ErrorType
		if res.FunctionError == "" {
			res.FunctionError = "function error"
		}
	}
	if res.FunctionError == "" && bytes.HasPrefix(bytes.TrimSpace(body), []byte("Task timed out")) {
		// The emulator reports a timeout as plain text with status 200.
		res.FunctionError, res.ErrorType = string(bytes.TrimSpace(body)), "Sandbox.Timedout"
	}
	if res.Status != http.StatusOK && res.FunctionError == "" {
		res.FunctionError = fmt.Sprintf("the emulator answered %d: %s", res.Status, truncate(string(body), 300))
	}
	return res, nil
}

func (e *emulator) stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	defer func() {
		if e.logFile != nil {
			e.logFile.Close()
		}
	}()
	select {
	case <-e.done:
		// Already gone: its process group id may belong to someone
		// else by now, so no signal.
		return
	default:
	}
	signalGroup(e.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-e.done:
	case <-time.After(3 * time.Second):
		signalGroup(e.cmd.Process.Pid, syscall.SIGKILL)
		<-e.done
	}
}

// emulatedBootstrap writes, beside bin, a script that runs bin under the
// emulator, and returns its path.
func emulatedBootstrap(emulator, bin string) (string, error) {
	emu, err := exec.LookPath(emulator)
	if err != nil {
		return "", fmt.Errorf("the CPU emulator %s: %w", emulator, err)
	}
	if emu, err = filepath.Abs(emu); err != nil {
		return "", err
	}
	script := bin + ".emulated"
	body := "#!/bin/sh\nexec " + shellQuote(emu) + " " + shellQuote(bin) + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return "", err
	}
	return script, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// freePorts returns n distinct free loopback ports. They are free when
// returned; the emulator binds them a moment later (a start that loses
// the race is retried).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// tailLines keeps the last max lines.
type tailLines struct {
	mu    sync.Mutex
	max   int
	lines []string
}

func (t *tailLines) add(l string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, l)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tailLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n") + "\n"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
