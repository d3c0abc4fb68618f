// Command server is the single-machine sheetlog server: the HTTP API of
// pkg/api over an embedded durable event log (bbolt, one file), a
// filesystem blob store and a supervised pool of snapshot workers, all
// under one data directory.
//
// Every flag can also be set by the environment variable named in its
// help; a flag given on the command line wins.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sheetlog/sheetlog/internal/connguard"
	"github.com/sheetlog/sheetlog/internal/detach"
	"github.com/sheetlog/sheetlog/pkg/api"
	fsblob "github.com/sheetlog/sheetlog/pkg/blobstore/fs"
	"github.com/sheetlog/sheetlog/pkg/enginecache"
	"github.com/sheetlog/sheetlog/pkg/eventlog/boltlog"
	"github.com/sheetlog/sheetlog/pkg/feed"
	"github.com/sheetlog/sheetlog/pkg/jwtauth"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
	"github.com/sheetlog/sheetlog/pkg/webui"
	"github.com/sheetlog/sheetlog/pkg/workers/pool"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}

// config is everything the server is started with.
type config struct {
	addr             string
	dataDir          string
	snapshotInterval int
	workers          int
	snapshotWrites   int
	token            string
	jwt              jwtConfig
	corsOrigins      []string
	cacheEngines     int
	cacheBytes       int
	maxConns         int
	workflowDeadline time.Duration
	shutdownTimeout  time.Duration
	retention        retention
	logLevel         slog.Level
	logJSON          bool
	metricsAddr      string
	warmSheets       int
}

func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(out)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var (
		c                                   config
		cors, level, format                 string
		interval, workers, engines, cacheMB string
		snapshotWrites                      string
		deadline, shutdown, maxConns        string
		audience, jwtRefresh                string
	)
	fs.StringVar(&c.addr, "addr", env("SHEETLOG_ADDR", "127.0.0.1:8080"), "listen address (SHEETLOG_ADDR)")
	fs.StringVar(&c.dataDir, "data", env("SHEETLOG_DATA", "./data"), "data directory: event log file and blobs (SHEETLOG_DATA)")
	fs.StringVar(&interval, "snapshot-interval", env("SHEETLOG_SNAPSHOT_INTERVAL", strconv.Itoa(spreadsheet.DefaultSnapshotInterval)), "entries between snapshots (SHEETLOG_SNAPSHOT_INTERVAL)")
	fs.StringVar(&workers, "workers", env("SHEETLOG_WORKERS", strconv.Itoa(runtime.GOMAXPROCS(0))), "snapshot worker goroutines (SHEETLOG_WORKERS)")
	fs.StringVar(&snapshotWrites, "snapshot-writes", env("SHEETLOG_SNAPSHOT_WRITES", "1"), "blob writes one snapshot makes at once (SHEETLOG_SNAPSHOT_WRITES)")
	fs.StringVar(&c.token, "token", env("SHEETLOG_TOKEN", ""), "bearer token required on /v1 requests; empty for none (SHEETLOG_TOKEN)")
	fs.StringVar(&c.jwt.keys, "jwt-keys", env("SHEETLOG_JWT_KEYS", ""), "JSON Web Key Set (a file, or an http(s) URL) to verify JWT bearer tokens with; their scopes then decide who may touch which sheet (SHEETLOG_JWT_KEYS)")
	fs.StringVar(&c.jwt.issuer, "jwt-issuer", env("SHEETLOG_JWT_ISSUER", ""), "the iss every JWT must carry; required with -jwt-keys (SHEETLOG_JWT_ISSUER)")
	fs.StringVar(&audience, "jwt-audience", env("SHEETLOG_JWT_AUDIENCE", ""), "comma-separated accepted aud (or, without aud, client_id) values; required with -jwt-keys (SHEETLOG_JWT_AUDIENCE)")
	fs.StringVar(&c.jwt.tenantClaim, "jwt-tenant-claim", env("SHEETLOG_JWT_TENANT_CLAIM", "tenant"), "the JWT claim {tenant} in a scope's pattern stands for (SHEETLOG_JWT_TENANT_CLAIM)")
	fs.StringVar(&c.jwt.scopePrefix, "jwt-scope-prefix", env("SHEETLOG_JWT_SCOPE_PREFIX", ""), "when set, only scopes that begin with it count, read without it (Cognito: the resource server's identifier and a slash) (SHEETLOG_JWT_SCOPE_PREFIX)")
	fs.StringVar(&jwtRefresh, "jwt-keys-refresh", env("SHEETLOG_JWT_KEYS_REFRESH", "1h"), "how often the key set is read again; a token whose key id is not in it makes it be read at most once per the shorter of this and 30s (SHEETLOG_JWT_KEYS_REFRESH)")
	fs.StringVar(&cors, "cors-origins", env("SHEETLOG_CORS_ORIGINS", ""), "comma-separated origins allowed by CORS, or * (SHEETLOG_CORS_ORIGINS)")
	fs.StringVar(&engines, "cache-engines", env("SHEETLOG_CACHE_ENGINES", "1000"), "most sheets kept in memory (SHEETLOG_CACHE_ENGINES)")
	fs.StringVar(&cacheMB, "cache-mb", env("SHEETLOG_CACHE_MB", "512"), "memory bound of the sheets kept, in MiB (SHEETLOG_CACHE_MB)")
	fs.StringVar(&maxConns, "max-conns", env("SHEETLOG_MAX_CONNS", "0"), "most client connections held at once, 0 for as many as the open file limit allows (at most 32768); past it the longest idle one is closed (SHEETLOG_MAX_CONNS)")
	fs.StringVar(&deadline, "workflow-deadline", env("SHEETLOG_WORKFLOW_DEADLINE", "5m"), "longest a snapshot may run before it is retried (SHEETLOG_WORKFLOW_DEADLINE)")
	fs.StringVar(&shutdown, "shutdown-timeout", env("SHEETLOG_SHUTDOWN_TIMEOUT", "15s"), "how long a shutdown waits for requests, then again for running snapshots (SHEETLOG_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.metricsAddr, "metrics-addr", env("SHEETLOG_METRICS_ADDR", ""), "address of the Prometheus metrics listener (/metrics), e.g. 127.0.0.1:9090; empty for none (SHEETLOG_METRICS_ADDR)")
	fs.StringVar(&level, "log-level", env("SHEETLOG_LOG_LEVEL", "info"), "debug, info, warn or error (SHEETLOG_LOG_LEVEL)")
	fs.StringVar(&format, "log-format", env("SHEETLOG_LOG_FORMAT", "text"), "text or json (SHEETLOG_LOG_FORMAT)")
	parseRetention := retentionFlags(fs, env)
	parseWarm := warmFlag(fs, env)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	num := func(name, v string, min int) int {
		n, e := strconv.Atoi(strings.TrimSpace(v))
		if e != nil || n < min {
			err = errors.Join(err, fmt.Errorf("-%s: want an integer >= %d, got %q", name, min, v))
		}
		return n
	}
	dur := func(name, v string) time.Duration {
		d, e := time.ParseDuration(v)
		if e != nil || d <= 0 {
			err = errors.Join(err, fmt.Errorf("-%s: want a positive duration such as 30s, got %q", name, v))
		}
		return d
	}
	c.snapshotInterval = num("snapshot-interval", interval, 1)
	c.workers = num("workers", workers, 1)
	c.snapshotWrites = num("snapshot-writes", snapshotWrites, 1)
	c.cacheEngines = num("cache-engines", engines, 1)
	c.cacheBytes = num("cache-mb", cacheMB, 1) << 20
	c.maxConns = num("max-conns", maxConns, 0)
	c.workflowDeadline = dur("workflow-deadline", deadline)
	c.shutdownTimeout = dur("shutdown-timeout", shutdown)
	c.jwt.refresh = dur("jwt-keys-refresh", jwtRefresh)
	c.warmSheets, err = parseWarm(err)
	if c.retention, err = parseRetention(err); err != nil {
		return c, err
	}
	for _, o := range strings.Split(cors, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.corsOrigins = append(c.corsOrigins, o)
		}
	}
	for _, a := range strings.Split(audience, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.jwt.audience = append(c.jwt.audience, a)
		}
	}
	if e := c.jwt.check(c.token); e != nil {
		err = errors.Join(err, e)
	}
	if _, port, _ := net.SplitHostPort(c.metricsAddr); c.metricsAddr == c.addr && port != "0" {
		err = errors.Join(err, fmt.Errorf("-metrics-addr must differ from -addr: metrics are never served with the API"))
	}
	if e := c.logLevel.UnmarshalText([]byte(level)); e != nil {
		err = errors.Join(err, fmt.Errorf("-log-level: %v", e))
	}
	switch format {
	case "text":
	case "json":
		c.logJSON = true
	default:
		err = errors.Join(err, fmt.Errorf("-log-format: want text or json, got %q", format))
	}
	return c, err
}

// run serves until ctx ends, then shuts down gracefully: it stops taking
// connections, drains the requests in flight, lets running snapshots
// finish within the shutdown timeout (the rest stay pending in the log and
// run after the next start) and closes the stores.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	opts := &slog.HandlerOptions{Level: c.logLevel}
	var handler slog.Handler = slog.NewTextHandler(stderr, opts)
	if c.logJSON {
		handler = slog.NewJSONHandler(stderr, opts)
	}
	lg := slog.New(handler)
	stopMetrics, err := serveMetrics(lg, c.metricsAddr, c.logLevel)
	if err != nil {
		return err
	}
	defer stopMetrics()

	if err := os.MkdirAll(c.dataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	logs, err := boltlog.Open(filepath.Join(c.dataDir, "eventlog.db"), boltlog.Options{Logger: lg})
	if err != nil {
		return err
	}
	defer logs.Close()
	blobs, err := fsblob.Open(filepath.Join(c.dataDir, "blobs"), fsblob.Options{Logger: lg})
	if err != nil {
		return err
	}
	defer blobs.Close()

	workerPool, err := pool.New(pool.Options{
		Workers: c.workers, Deadline: c.workflowDeadline, Lister: logs, Logger: lg,
	})
	if err != nil {
		return err
	}
	// Every append goes through the notifier, which wakes the change
	// feed's waiters of the sheet.
	notifier := newFeed(logs)
	// One blob write at a time by default: on a local disk parallel
	// writes gain a snapshot little, while their directory fsyncs delay
	// the log's commits that every append waits for (bench-import: about
	// 37,000 cells/s with 8 at once, 45,000 with 1).
	engineOpts := spreadsheet.Options{SnapshotInterval: c.snapshotInterval, WriteConcurrency: c.snapshotWrites, Logger: lg}
	c.retention.apply(&engineOpts)
	// Host and worker engines of one sheet are separate: each keeps its
	// own copy of the cells (the worker's lags at the snapshot it builds).
	newCache := func(host bool) *enginecache.Cache {
		return enginecache.New(func(sheet string) (*spreadsheet.Engine, error) {
			log, err := notifier.Log(sheet)
			if err != nil {
				return nil, err
			}
			root, err := blobs.Sheet(sheet)
			if err != nil {
				return nil, err
			}
			if host {
				return spreadsheet.New(sheet, log, root, workerPool, engineOpts)
			}
			return spreadsheet.New(sheet, log, root, nil, engineOpts)
		}, enginecache.Options{MaxEngines: c.cacheEngines, MaxBytes: c.cacheBytes / 2})
	}
	// Retention passes run on worker engines: after each snapshot in the
	// worker that completed it, and when a grace ends on the scheduler,
	// which outlives the engines the cache drops.
	var workerEngines *enginecache.Cache
	retirer := spreadsheet.NewRetireScheduler(func(ctx context.Context, sheet string) (*spreadsheet.Engine, error) {
		return workerEngines.Get(ctx, sheet)
	}, spreadsheet.RetireSchedulerOptions{Logger: lg})
	if c.retention.on() {
		engineOpts.RetireLater = retirer.Schedule
	}
	hostEngines := newCache(true)
	workerEngines = newCache(false)
	workerPool.SetHandler(spreadsheet.WorkflowHandler(workerEngines.Get))

	var auth api.Authenticator
	if c.jwt.keys != "" {
		v, err := jwtauth.New(ctx, jwtauth.Options{
			Keys: c.jwt.keys, Issuer: c.jwt.issuer, Audience: c.jwt.audience, Logger: lg,
			RefreshEvery: c.jwt.refresh, MinRefreshGap: min(c.jwt.refresh, jwtauth.DefaultMinRefreshGap),
			Claims: api.TokenClaims{Tenant: c.jwt.tenantClaim, ScopePrefix: c.jwt.scopePrefix},
		})
		if err != nil {
			return err
		}
		defer v.Close()
		auth = api.BearerTokens(v)
	}
	// A change feed request that has to wait gives its connection's
	// goroutine and buffers back while it does (internal/detach).
	detacher := detach.New(detach.Options{IdleTimeout: idleTimeout})
	h, err := api.New(api.Config{
		Logs: notifier, Blobs: blobs, Engines: hostEngines, Feed: notifier,
		Detach: func(w http.ResponseWriter, r *http.Request) (api.DetachedReply, bool) {
			if rep, ok := detacher.Detach(w, r); ok {
				return rep, true
			}
			return nil, false
		},
		Token: c.token, Auth: auth, CORSOrigins: c.corsOrigins, Logger: lg,
		Health: func(ctx context.Context) error {
			if _, err := logs.Pending(ctx); err != nil {
				return err
			}
			root, err := blobs.Sheet("healthz")
			if err != nil {
				return err
			}
			_, err = root.Query(ctx, "")
			return err
		},
	})
	if err != nil {
		return err
	}

	maxConns := fitConns(lg, c.maxConns)
	guard := connguard.New(connguard.Options{MaxConns: maxConns, ErrorBody: api.ValidationErrorBody})
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           webui.Handler(h),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       idleTimeout,
		ConnState:         guard.ConnState,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	if err := workerPool.Start(); err != nil {
		ln.Close()
		return err
	}
	if c.retention.on() {
		c.retention.afterRestart(ctx, lg, logs, retirer)
	}
	url := "http://" + ln.Addr().String()
	// The address is always worth printing, whatever the log level.
	lg.Log(ctx, max(slog.LevelInfo, c.logLevel), "sheetlog server listening", "url", url, "data", c.dataDir,
		"snapshotInterval", c.snapshotInterval, "workers", c.workers, "maxConns", maxConns,
		"auth", c.authMode(), "corsOrigins", c.corsOrigins,
		"snapshotRetain", c.retention.retain, "snapshotGrace", c.retention.grace.String(), "truncateLog", c.retention.truncateLog)

	defer startWarming(ctx, lg, c.dataDir, c.warmSheets, hostEngines)()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(detacher.Listen(guard.Listen(ln))) }()
	select {
	case err := <-served:
		_ = workerPool.Close(context.Background())
		_ = retirer.Close(context.Background())
		return err
	case <-ctx.Done():
	}

	// Waiting change feed requests get their empty page now rather than
	// hold the drain for up to their whole wait.
	detacher.Close()
	notifier.Release()
	lg.Info("shutting down", "timeout", c.shutdownTimeout)
	drain(lg, c.shutdownTimeout,
		drainStep{srv.Shutdown, "requests still running at shutdown were cut"},
		drainStep{detacher.Wait, "change feed replies still being written at shutdown were cut"},
		drainStep{workerPool.Close, "snapshots still running at shutdown stay pending and run after the next start"},
		drainStep{retirer.Close, "retention passes still running at shutdown are done again after the next start"})
	lg.Info("stopped", "pool", workerPool.Metrics(), "conns", guard.Stats())
	return nil
}

// idleTimeout is how long a keep-alive connection may wait for its next
// request, also after a change feed reply written off net/http's
// goroutine (internal/detach).
const idleTimeout = 2 * time.Minute

// newFeed builds the server's change feed over its event log; tests
// replace it to watch the waiters.
var newFeed = feed.NewNotifier

// jwtConfig is how the server verifies JWTs, when it does.
type jwtConfig struct {
	keys, issuer string
	audience     []string
	tenantClaim  string
	scopePrefix  string
	refresh      time.Duration
}

func (j jwtConfig) check(token string) error {
	switch {
	case j.keys == "" && (j.issuer != "" || len(j.audience) > 0):
		return errors.New("-jwt-issuer and -jwt-audience need -jwt-keys")
	case j.keys == "":
		return nil
	case token != "":
		return errors.New("-token and -jwt-keys exclude each other: choose one")
	case j.issuer == "" || len(j.audience) == 0:
		return errors.New("-jwt-keys needs -jwt-issuer and -jwt-audience: a token from any issuer, or meant for any other service, must not be accepted")
	case j.tenantClaim == "":
		return errors.New("-jwt-tenant-claim: want a claim name")
	}
	return nil
}

// authMode names how callers are authenticated, for the start-up log.
func (c config) authMode() string {
	switch {
	case c.jwt.keys != "":
		return "jwt"
	case c.token != "":
		return "token"
	}
	return "none"
}

// autoMaxConns caps the default -max-conns (0): a connection waiting for
// a request costs about 20 KB in net/http, so this bounds what holding
// connections can cost at about 650 MB.
const autoMaxConns = 32_768

// fdReserve is the descriptors kept for everything but client
// connections: the event log, blob files being written and read by
// requests and snapshot workers, the listener.
const fdReserve = 256

// fitConns raises the process's descriptor limit as far as it may go and
// returns the connections to hold: want, or for 0 as many as the limit
// leaves room for (at most autoMaxConns). The more the server can hold,
// the less an attacker holding many connections makes it churn through
// them (shedding one, accepting its replacement).
func fitConns(lg *slog.Logger, want int) int {
	limit, err := connguard.RaiseFileLimit()
	if err != nil {
		lg.Warn("could not raise the open file limit", "limit", limit, "err", err)
	}
	room := autoMaxConns
	if limit > 0 {
		room = max(1, int(min(limit, 1<<31))-fdReserve)
	}
	switch {
	case want == 0:
		return min(room, autoMaxConns)
	case want > room && limit > 0:
		lg.Warn("-max-conns lowered to fit the open file limit; raise the hard limit (ulimit -Hn) to hold more",
			"maxConns", want, "fits", room, "openFileLimit", limit)
		return room
	}
	return want
}

// drainStep is one part of a graceful shutdown: stop is given a context
// that ends at the step's deadline; warn is logged when it cannot finish
// by then.
type drainStep struct {
	stop func(context.Context) error
	warn string
}

// drain runs the steps in order, each with its own deadline of timeout:
// a client that holds its request to the end must not leave the next step
// (running snapshots) an expired one.
func drain(lg *slog.Logger, timeout time.Duration, steps ...drainStep) {
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		if err := s.stop(ctx); err != nil {
			lg.Warn(s.warn, "err", err)
		}
		cancel()
	}
}
