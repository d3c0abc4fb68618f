// Package lambdarun is what the three Lambda functions (cmd/api-lambda,
// cmd/workflow-lambda, cmd/sweeper-lambda) share: their configuration from
// environment variables, a structured JSON logger, the AWS stores, engine
// caches, and Workflows, the one code path that runs pending workflows for
// both the stream-triggered workflow Lambda and the scheduled sweeper.
//
// Everything here is built once per execution environment (at init) and
// reused by every warm invocation.
package lambdarun

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sheetlog/sheetlog/pkg/api"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// Environment variables read here besides the awsschema ones (which the
// CDK stack sets). All are optional.
const (
	// EnvCacheEngines bounds the number of engines an engine cache keeps.
	EnvCacheEngines = "SHEETLOG_ENGINE_CACHE_ENGINES"
	// EnvCacheMB bounds the approximate memory (MiB) of a cache's engines.
	EnvCacheMB = "SHEETLOG_ENGINE_CACHE_MB"
	// EnvWorkflowConcurrency is how many sheets one invocation works on at
	// once (records of one sheet always run in stream order).
	EnvWorkflowConcurrency = "SHEETLOG_WORKFLOW_CONCURRENCY"
	// EnvSweepMax is the most pending entries one sweep runs.
	EnvSweepMax = "SHEETLOG_SWEEP_MAX"
	// EnvFaultFailFirst, when > 0, makes the first N attempts of every
	// workflow fail before doing anything (fault injection for the
	// end-to-end harness; never set by the stack).
	EnvFaultFailFirst = "SHEETLOG_FAULT_FAIL_FIRST"
	// EnvFaultSheetPrefix limits EnvFaultFailFirst to sheets whose id
	// starts with it (empty: every sheet).
	EnvFaultSheetPrefix = "SHEETLOG_FAULT_SHEET_PREFIX"
	// EnvFaultRules adds more such rules, "prefix=N,prefix=N": the first
	// N attempts of each workflow of a sheet whose id starts with prefix
	// fail (the first matching rule counts; the EnvFaultFailFirst one
	// comes first). For the end-to-end harness; never set by the stack.
	EnvFaultRules = "SHEETLOG_FAULT_RULES"

	// envMemoryMB is set by Lambda (and by the emulator) to the function's
	// memory size.
	envMemoryMB = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
)

// Defaults of Config.
const (
	DefaultSweepGrace          = 5 * time.Minute
	DefaultCacheEngines        = 64
	DefaultWorkflowConcurrency = 4
	DefaultSweepMax            = 200
	// Without a memory size, engines may hold this much.
	defaultCacheMB = 128
)

// Config is the configuration of a function, read from its environment.
type Config struct {
	Table  string
	Bucket string
	// SnapshotInterval is the engine's N (API only); 0 means the engine's
	// default.
	SnapshotInterval int
	CORSOrigins      []string
	// APIAuth is awsschema.EnvAPIAuth's value ("iam" when unset), and
	// JWTClaims where tokens carry what the scope rule reads (API only).
	APIAuth    string
	JWTClaims  api.TokenClaims
	SweepGrace time.Duration
	LogLevel   slog.Level

	CacheEngines int
	// CacheBytes defaults to a quarter of the function's memory.
	CacheBytes int

	WorkflowConcurrency int
	SweepMax            int

	// TokenKeySecret names the Secrets Manager secret holding the
	// continuation token key (awsschema.EnvTokenKeySecret); TokenKey is
	// the key itself, once loaded (LoadTokenKey).
	TokenKeySecret string
	TokenKey       []byte

	FaultFailFirst   int
	FaultSheetPrefix string
	// Retention is what the workflow and sweeper functions retire.
	Retention  Retention
	FaultRules []FaultRule
	// S3PathStyle is set when an endpoint override is in the environment
	// (emulators serve buckets as paths, not host names).
	S3PathStyle bool
	// MetricsNamespace is the CloudWatch namespace of the metrics.
	MetricsNamespace string
}

// FaultRule makes the first FailFirst attempts of each workflow of the
// sheets whose id starts with Prefix fail (fault injection).
type FaultRule struct {
	Prefix    string
	FailFirst int
}

// faultRules are c's fault injection rules, in the order they apply.
func (c Config) faultRules() []FaultRule {
	var rules []FaultRule
	if c.FaultFailFirst > 0 {
		rules = append(rules, FaultRule{Prefix: c.FaultSheetPrefix, FailFirst: c.FaultFailFirst})
	}
	return append(rules, c.FaultRules...)
}

// FromEnv reads the configuration with getenv (os.Getenv in the
// functions). Table and bucket are required; a malformed value is an
// error, never silently replaced by a default.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Table:               strings.TrimSpace(getenv(awsschema.EnvTable)),
		Bucket:              strings.TrimSpace(getenv(awsschema.EnvBucket)),
		SweepGrace:          DefaultSweepGrace,
		CacheEngines:        DefaultCacheEngines,
		WorkflowConcurrency: DefaultWorkflowConcurrency,
		SweepMax:            DefaultSweepMax,
		FaultSheetPrefix:    getenv(EnvFaultSheetPrefix),
		MetricsNamespace:    cmp.Or(strings.TrimSpace(getenv(awsschema.EnvMetricsNamespace)), awsschema.DefaultMetricsNamespace),
		TokenKeySecret:      strings.TrimSpace(getenv(awsschema.EnvTokenKeySecret)),
	}
	var problems []string
	bad := func(name, v, want string) {
		problems = append(problems, fmt.Sprintf("%s=%q: want %s", name, v, want))
	}
	if c.Table == "" {
		problems = append(problems, awsschema.EnvTable+" is not set")
	}
	if c.Bucket == "" {
		problems = append(problems, awsschema.EnvBucket+" is not set")
	}
	positive := func(name string, dst *int, allowZero bool) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (n == 0 && !allowZero) {
			bad(name, v, "a positive integer")
			return
		}
		*dst = n
	}
	positive(awsschema.EnvSnapshotInterval, &c.SnapshotInterval, false)
	positive(EnvCacheEngines, &c.CacheEngines, false)
	positive(EnvWorkflowConcurrency, &c.WorkflowConcurrency, false)
	positive(EnvSweepMax, &c.SweepMax, false)
	positive(EnvFaultFailFirst, &c.FaultFailFirst, true)
	c.Retention = retentionFromEnv(getenv, bad)

	for _, r := range strings.Split(getenv(EnvFaultRules), ",") {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		prefix, n, ok := strings.Cut(r, "=")
		count, err := strconv.Atoi(n)
		if !ok || err != nil || count < 1 {
			bad(EnvFaultRules, r, "prefix=N with N a positive integer")
			continue
		}
		c.FaultRules = append(c.FaultRules, FaultRule{Prefix: prefix, FailFirst: count})
	}

	memMB := defaultCacheMB * 4
	if v := strings.TrimSpace(getenv(envMemoryMB)); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			memMB = n
		}
	}
	cacheMB := max(memMB/4, 16)
	positive(EnvCacheMB, &cacheMB, false)
	c.CacheBytes = cacheMB << 20

	for _, o := range strings.Split(getenv(awsschema.EnvCORSOrigins), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.CORSOrigins = append(c.CORSOrigins, o)
		}
	}
	if v := strings.TrimSpace(getenv(awsschema.EnvSweepGrace)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad(awsschema.EnvSweepGrace, v, "a non-negative Go duration such as 15m")
		} else {
			c.SweepGrace = d
		}
	}
	switch v := strings.ToLower(strings.TrimSpace(getenv(awsschema.EnvLogLevel))); v {
	case "", "info":
		c.LogLevel = slog.LevelInfo
	case "debug":
		c.LogLevel = slog.LevelDebug
	case "warn", "warning":
		c.LogLevel = slog.LevelWarn
	case "error":
		c.LogLevel = slog.LevelError
	default:
		bad(awsschema.EnvLogLevel, v, "debug, info, warn or error")
	}
	if err := authFromEnv(getenv, &c); err != nil {
		problems = append(problems, err.Error())
	}
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		if getenv(k) != "" {
			c.S3PathStyle = true
		}
	}
	if len(problems) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(problems, "; "))
	}
	return c, nil
}

// NewLogger is the functions' logger: one JSON object per line on stdout,
// which Lambda forwards to CloudWatch Logs, tagged with the function.
func NewLogger(function string, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(stdout, &slog.HandlerOptions{Level: level})).With("function", function)
}

// Fatal logs err as the reason init failed and exits: Lambda reports the
// exit as an init error and retries the environment.
func Fatal(log *slog.Logger, msg string, err error) {
	log.Error(msg, "err", err)
	os.Exit(1)
}
