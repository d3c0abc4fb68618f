// Command runner starts the local Lambda harness (see package
// lambdaharness), runs a command against it (the end-to-end suite, with
// SHEETLOG_E2E_BASE_URL and SHEETLOG_E2E_HARNESS_URL set), prints what the
// run measured, and exits with the command's status. With -serve and no
// command it keeps the harness up until interrupted.
//
// The functions run from their deployment zips (<function>.zip in -zips,
// as `make lambdas` builds them): each bootstrap is taken out of its zip
// and run under the Runtime Interface Emulator, through -qemu when it is
// built for another architecture than this machine's.
//
//	runner -rie bin/aws-lambda-rie -zips build -arch arm64 -qemu qemu-aarch64-static \
//	    -logs build/e2e/logs -- go test -count=1 -v ./test/e2e
package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"github.com/sheetlog/sheetlog/internal/lambdaharness"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// Targets of the measurements, printed beside them.
const (
	zipTarget  = 8 << 20
	initTarget = 100 * time.Millisecond
)

func main() {
	var (
		rie        = flag.String("rie", "bin/aws-lambda-rie", "the aws-lambda-rie executable")
		zipDir     = flag.String("zips", "build", "directory of the deployment zips <function>.zip")
		wantArch   = flag.String("arch", "", "refuse zips built for another architecture (amd64 or arm64)")
		qemu       = flag.String("qemu", "", "user-mode emulator for bootstraps of another architecture (qemu-aarch64-static)")
		logDir     = flag.String("logs", "build/e2e/logs", "directory for the emulators' logs and the dead-letter file")
		serve      = flag.Bool("serve", false, "keep the harness up until interrupted (no command)")
		interval   = flag.Int("interval", 50, "snapshot interval of the API function")
		grace      = flag.Duration("sweep-grace", time.Second, "sweeper grace period")
		every      = flag.Duration("sweep-every", 4*time.Second, "sweeper schedule (each sweep is 16 index Queries, every one a whole-table read on moto: more often slows the whole run)")
		failFirst  = flag.Int("fault-fail-first", 2, "workflow attempts that fail on purpose, for sheets with -fault-prefix (negative: none)")
		prefix     = flag.String("fault-prefix", "fault-", "sheet id prefix of fault injection")
		apiN       = flag.Int("api-instances", 1, "concurrent API function emulators (more: requests for one sheet alternate between engines, as on Lambda)")
		maxRetries = flag.Int("max-retries", 3, "retries of a failing stream record before it is dead-lettered")
		timeout    = flag.Duration("timeout", 10*time.Minute, "give up after this long")
		verbose    = flag.Bool("v", false, "log the harness's own debug messages")
		retain     = flag.Int("snapshot-retain", 2, "snapshots kept per sheet by the workflow and sweeper functions (negative: all)")
		retire     = flag.Duration("snapshot-grace", 5*time.Second, "grace before an older snapshot is retired")
		truncate   = flag.Bool("truncate-log", false, "truncate each log to its oldest snapshot kept")
		jwtMode    = flag.Bool("jwt", false, "the stack's JWT configuration: the front verifies bearer tokens as API Gateway's JWT authorizer and the API function applies the scope rule; the command is given a signing key (SHEETLOG_E2E_JWT_KEY) and a token allowed everything (SHEETLOG_E2E_TOKEN)")
	)
	flag.Parse()
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("harness", "e2e")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	unzipped, err := os.MkdirTemp("", "sheetlog-bootstraps-")
	if err != nil {
		fail(log, "creating a directory for the bootstraps", err)
	}
	cleanup = func() { os.RemoveAll(unzipped) }
	bins, arch, err := extract(*zipDir, unzipped, *wantArch)
	if err != nil {
		fail(log, "taking the bootstraps out of their zips", err)
	}
	emulator := ""
	if arch != runtime.GOARCH {
		if *qemu == "" {
			fail(log, "running the zips", fmt.Errorf("they are built for %s and this machine is %s: pass -qemu", arch, runtime.GOARCH))
		}
		emulator = *qemu
		log.Info("the functions run under a CPU emulator", "arch", arch, "emulator", emulator)
	}
	if *logDir != "" {
		_ = os.RemoveAll(*logDir)
		if err := os.MkdirAll(*logDir, 0o755); err != nil {
			fail(log, "creating the log directory", err)
		}
	}
	var jwt *lambdaharness.JWTOptions
	var jwtEnv []string
	if *jwtMode {
		var err error
		if jwt, jwtEnv, err = jwtSetup(*logDir); err != nil {
			fail(log, "making the JWT key pair", err)
		}
	}
	started := time.Now()
	h, err := lambdaharness.Start(ctx, lambdaharness.Options{
		JWT: jwt,
		RIE: *rie, Binaries: bins, Emulator: emulator, LogDir: *logDir,
		SnapshotInterval: *interval, SweepGrace: *grace, SweepEvery: *every,
		FaultFailFirst: *failFirst, FaultSheetPrefix: *prefix, APIInstances: *apiN,
		MaxRetries: *maxRetries, Log: log,
		Retention: lambdarun.Retention{Retain: *retain, Grace: *retire, TruncateLog: *truncate},
	})
	if err != nil {
		fail(log, "starting the harness", err)
	}
	log.Info("harness up", "seconds", fmt.Sprintf("%.1f", time.Since(started).Seconds()),
		"SHEETLOG_E2E_BASE_URL", h.FrontURL, "SHEETLOG_E2E_HARNESS_URL", h.ControlURL)

	code := 0
	switch {
	case *serve || flag.NArg() == 0:
		fmt.Printf("SHEETLOG_E2E_BASE_URL=%s\nSHEETLOG_E2E_HARNESS_URL=%s\n", h.FrontURL, h.ControlURL)
		for _, e := range jwtEnv {
			fmt.Println(e)
		}
		<-ctx.Done()
	default:
		code = run(ctx, flag.Args(), h, jwtEnv)
	}
	report := h.Report()
	var inits []string
	for _, f := range []*lambdaharness.Function{h.API, h.Workflow, h.Sweeper} {
		var worst time.Duration
		for _, d := range f.Stats().InitDurations {
			worst = max(worst, d)
		}
		verdict := "ok"
		switch {
		case emulator != "":
			verdict = "(emulated: the target is for native runs)"
		case worst > initTarget:
			verdict = "OVER TARGET"
		}
		inits = append(inits, fmt.Sprintf("  %-16s init (longest) %.1f ms %s", f.Name(), float64(worst)/1e6, verdict))
	}
	h.Close()

	fmt.Println()
	fmt.Println("==== sheetlog Lambda end-to-end: measurements ====")
	how := "natively"
	if emulator != "" {
		how = "under " + emulator
	}
	fmt.Printf("zips the functions ran from (linux/%s, %s; built by `make lambdas`), target <= %d MB:\n", arch, how, zipTarget>>20)
	printZips(*zipDir)
	fmt.Printf("init under the Runtime Interface Emulator (its INIT REPORT), target <= %v:\n", initTarget)
	for _, l := range inits {
		fmt.Println(l)
	}
	fmt.Print(report)
	if *logDir != "" {
		fmt.Printf("logs: %s\n", *logDir)
	}
	fmt.Printf("total %.1f s\n", time.Since(started).Seconds())
	cleanup()
	os.Exit(code)
}

func run(ctx context.Context, args []string, h *lambdaharness.Harness, env []string) int {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(),
		"SHEETLOG_E2E_BASE_URL="+h.FrontURL,
		"SHEETLOG_E2E_HARNESS_URL="+h.ControlURL,
	)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return ee.ExitCode()
	default:
		fmt.Fprintf(os.Stderr, "running %v: %v\n", args, err)
		return 1
	}
}

// extract takes each function's bootstrap out of dir/<function>.zip into
// tmp and returns their paths and their one architecture.
func extract(dir, tmp, want string) (map[string]string, string, error) {
	bins := map[string]string{}
	arch := ""
	for _, fn := range []string{awsschema.FunctionAPI, awsschema.FunctionWorkflow, awsschema.FunctionSweeper} {
		b, err := lambdaharness.ExtractBootstrap(filepath.Join(dir, fn+".zip"), filepath.Join(tmp, fn))
		if err != nil {
			return nil, "", err
		}
		switch {
		case want != "" && b.Arch != want:
			return nil, "", fmt.Errorf("%s.zip is built for %s, not %s", fn, b.Arch, want)
		case arch != "" && b.Arch != arch:
			return nil, "", fmt.Errorf("%s.zip is built for %s, the others for %s", fn, b.Arch, arch)
		}
		arch, bins[fn] = b.Arch, b.Path
	}
	return bins, arch, nil
}

func printZips(dir string) {
	if dir == "" {
		return
	}
	for _, fn := range []string{awsschema.FunctionAPI, awsschema.FunctionWorkflow, awsschema.FunctionSweeper} {
		st, err := os.Stat(filepath.Join(dir, fn+".zip"))
		if err != nil {
			fmt.Printf("  %-16s zip: missing (%v)\n", fn, err)
			continue
		}
		verdict := "ok"
		if st.Size() > zipTarget {
			verdict = "OVER TARGET"
		}
		sum := "?"
		if b, err := os.ReadFile(filepath.Join(dir, fn+".zip")); err == nil {
			sum = fmt.Sprintf("%x", sha256.Sum256(b))[:16]
		}
		fmt.Printf("  %-16s zip %.2f MB (%d bytes, sha256 %s…) %s\n", fn, float64(st.Size())/(1<<20), st.Size(), sum, verdict)
	}
}

// cleanup removes what the runner made; os.Exit skips deferred calls.
var cleanup = func() {}

func fail(log *slog.Logger, msg string, err error) {
	log.Error(msg, "err", err)
	cleanup()
	os.Exit(2)
}
