package sheetlogstack

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

// Endpoint is the public front door of the API Lambda.
type Endpoint string

const (
	// EndpointHTTPAPI is an API Gateway HTTP API (v2): authorization,
	// throttling, CORS and access logs. The production front door.
	EndpointHTTPAPI Endpoint = "httpapi"
	// EndpointFunctionURL is a Lambda function URL. It exists for LocalStack's
	// free image, which does not emulate HTTP APIs; the function URL sends
	// the same version 2.0 event, so the API Lambda serves both unchanged.
	EndpointFunctionURL Endpoint = "functionurl"
)

// FunctionSettings sizes one Lambda function.
type FunctionSettings struct {
	// MemoryMiB also buys CPU: Lambda allots CPU in proportion to memory.
	MemoryMiB int
	Timeout   time.Duration
	// ReservedConcurrency caps (and reserves) concurrent executions. 0
	// means the function's default (see DefaultWorkflow and friends); a
	// negative value leaves the function unreserved. A new account's
	// concurrency limit can be as low as 10, and Lambda refuses a
	// reservation that leaves less than its minimum unreserved: deploy such
	// an account with the reservedConcurrency=false context.
	ReservedConcurrency int
}

// StreamSettings configure the event source mapping from the table's
// stream to the workflow Lambda. Lambda's own defaults retry forever and
// keep records until the stream drops them (24 hours), which blocks the
// shard behind one poisoned record: every limit here is finite.
type StreamSettings struct {
	BatchSize     int
	RetryAttempts int
	MaxRecordAge  time.Duration
	// ParallelizationFactor is the number of concurrent batches per shard
	// (1 to 10); records of one sheet stay in order either way.
	ParallelizationFactor int
	// DisableBisect turns off BisectBatchOnFunctionError. The workflow
	// function reports failed records one by one, so a batch fails as a
	// whole only when the function crashes or times out; bisecting then
	// isolates the record that does it.
	DisableBisect bool
}

// Props are every knob of the stack. The zero value of each field means its
// documented default, and every default is the production-safe choice: data
// is retained, nothing is anonymous, retries are finite.
type Props struct {
	awscdk.StackProps

	// AssetDir holds the Lambda zips <function>.zip made by `make lambdas`.
	// Relative paths are resolved from the working directory of the CDK app
	// (infra/cdk under `cdk synth`). Default "../../build".
	AssetDir string

	// Dev relaxes what protects data: the table loses deletion protection
	// and, with the bucket and log groups, is destroyed with the stack.
	// Default false (RETAIN, deletion protection on).
	Dev bool

	// Architecture of the Lambda zips: "arm64" (default) or "x86_64".
	Architecture string

	// API, Workflow and Sweeper size the three functions. Defaults: API
	// 512 MiB / 29 s (an HTTP API waits at most 30 s), unreserved (the
	// HTTP API's throttling bounds it); Workflow 1024 MiB / 5 min, 10
	// reserved (at most 10 concurrent stream batches: bounded fan-out onto
	// the table, the bucket and the bill); Sweeper 512 MiB / 5 min, 1
	// reserved (sweeps never overlap).
	API, Workflow, Sweeper FunctionSettings

	// LogLevel of the functions: debug, info (default), warn or error.
	LogLevel string
	// LogRetentionDays of every log group the stack creates; one of the
	// values CloudWatch Logs accepts. Default 30.
	LogRetentionDays int

	// SnapshotInterval is the number of entries between snapshot requests.
	// Default 100.
	SnapshotInterval int

	// CORSOrigins are the browser origins allowed to call the API (exact
	// origins such as "https://app.example.com", or "*"). Default none: no
	// CORS headers, browsers on other origins are refused.
	CORSOrigins []string

	// SweepGrace is how long an entry stays pending before the sweeper runs
	// its workflow itself. Default 15 min: well past the stream's retries,
	// so the sweeper only picks up what the stream path lost.
	SweepGrace time.Duration
	// SweepRate is the EventBridge schedule of the sweeper. Default 5 min.
	SweepRate time.Duration

	// Retention is snapshot retention. Defaults: keep 2, grace 10
	// minutes, no log truncation.
	Retention RetentionSettings

	// Stream configures the event source mapping. Defaults: batch 10, 5
	// retries, records older than 1 hour go to the dead-letter queue,
	// parallelization 1, bisect on error.
	Stream StreamSettings

	// ThrottleRate (requests per second, steady) and ThrottleBurst of the
	// HTTP API's default stage. Defaults 50 and 100.
	ThrottleRate  int
	ThrottleBurst int

	// JWTIssuer and JWTAudience select a JWT authorizer (both or neither).
	// Without them every route requires IAM (SigV4) authorization.
	JWTIssuer   string
	JWTAudience []string
	// JWTTenantClaim names the token claim {tenant} in a scope's pattern
	// stands for (default "tenant"), and JWTScopePrefix, when set, must
	// begin every scope the per-sheet rule reads (Cognito: the resource
	// server's identifier and "/"). JWT authorizer only.
	JWTTenantClaim string
	JWTScopePrefix string
	// AllowAnonymous opens every route to unauthenticated callers. Demo and
	// local emulator use only; default false.
	AllowAnonymous bool

	// Endpoint is the API's front door. Default EndpointHTTPAPI.
	Endpoint Endpoint

	// AlarmTopicARN, when set, is an SNS topic that every alarm notifies
	// (in alarm and back to OK). Default none: alarms show in the console.
	AlarmTopicARN string
	// IteratorAgeAlarm is the age of the oldest unprocessed stream record
	// that raises the iterator age alarm. Default 5 min.
	IteratorAgeAlarm time.Duration
	// PendingAgeAlarm is the age of the oldest pending workflow (as the
	// sweeper sees it) that raises the pending age alarm; more than
	// SweepGrace. Default twice SweepGrace.
	PendingAgeAlarm time.Duration

	// DisableTracing turns X-Ray active tracing of the three functions
	// off. Default false: traced (docs/operations.md says what it costs).
	DisableTracing bool

	// DisableBucketAccessLogs drops the S3 server access log bucket.
	// Default false: blob reads and writes are logged.
	DisableBucketAccessLogs bool

	// NoncurrentVersionDays is how long the buckets (versioned) keep an
	// overwritten or deleted object. Default 3.
	NoncurrentVersionDays int
}

// Defaults, exported so that the documentation and the tests quote the same
// numbers as the code.
const (
	DefaultAssetDir         = "../../build"
	DefaultArchitecture     = "arm64"
	DefaultLogLevel         = "info"
	DefaultLogRetentionDays = 30
	DefaultSnapshotInterval = 100
	DefaultSweepGrace       = 15 * time.Minute
	DefaultSweepRate        = 5 * time.Minute
	DefaultBatchSize        = 10
	DefaultRetryAttempts    = 5
	DefaultMaxRecordAge     = time.Hour
	DefaultThrottleRate     = 50
	DefaultThrottleBurst    = 100
	DefaultIteratorAgeAlarm = 5 * time.Minute
	DefaultNoncurrentDays   = 3
)

var (
	DefaultAPI      = FunctionSettings{MemoryMiB: 512, Timeout: 29 * time.Second, ReservedConcurrency: -1}
	DefaultWorkflow = FunctionSettings{MemoryMiB: 1024, Timeout: 5 * time.Minute, ReservedConcurrency: 10}
	DefaultSweeper  = FunctionSettings{MemoryMiB: 512, Timeout: 5 * time.Minute, ReservedConcurrency: 1}
)

// retentionDays are the values CloudWatch Logs accepts.
var retentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// withDefaults returns p with every zero field set to its default, or an
// error for a combination that cannot be deployed.
func (p Props) withDefaults() (Props, error) {
	setInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if p.AssetDir == "" {
		p.AssetDir = DefaultAssetDir
	}
	if p.Architecture == "" {
		p.Architecture = DefaultArchitecture
	}
	if p.LogLevel == "" {
		p.LogLevel = DefaultLogLevel
	}
	if p.Endpoint == "" {
		p.Endpoint = EndpointHTTPAPI
	}
	fn := func(f *FunctionSettings, d FunctionSettings) {
		setInt(&f.MemoryMiB, d.MemoryMiB)
		setDur(&f.Timeout, d.Timeout)
		setInt(&f.ReservedConcurrency, d.ReservedConcurrency)
	}
	fn(&p.API, DefaultAPI)
	fn(&p.Workflow, DefaultWorkflow)
	fn(&p.Sweeper, DefaultSweeper)
	setInt(&p.LogRetentionDays, DefaultLogRetentionDays)
	setInt(&p.SnapshotInterval, DefaultSnapshotInterval)
	setDur(&p.SweepGrace, DefaultSweepGrace)
	setDur(&p.SweepRate, DefaultSweepRate)
	p.Retention.defaults()
	setInt(&p.Stream.BatchSize, DefaultBatchSize)
	setInt(&p.Stream.RetryAttempts, DefaultRetryAttempts)
	setDur(&p.Stream.MaxRecordAge, DefaultMaxRecordAge)
	setInt(&p.Stream.ParallelizationFactor, 1)
	setInt(&p.ThrottleRate, DefaultThrottleRate)
	setInt(&p.ThrottleBurst, DefaultThrottleBurst)
	setDur(&p.IteratorAgeAlarm, DefaultIteratorAgeAlarm)
	setDur(&p.PendingAgeAlarm, 2*p.SweepGrace)
	setInt(&p.NoncurrentVersionDays, DefaultNoncurrentDays)
	return p, p.validate()
}

func (p Props) validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if p.Architecture != "arm64" && p.Architecture != "x86_64" {
		bad("architecture %q: want arm64 or x86_64", p.Architecture)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, p.LogLevel) {
		bad("log level %q: want debug, info, warn or error", p.LogLevel)
	}
	if !slices.Contains(retentionDays, p.LogRetentionDays) {
		bad("log retention %d days: CloudWatch Logs accepts only %v", p.LogRetentionDays, retentionDays)
	}
	if p.Endpoint != EndpointHTTPAPI && p.Endpoint != EndpointFunctionURL {
		bad("endpoint %q: want %s or %s", p.Endpoint, EndpointHTTPAPI, EndpointFunctionURL)
	}
	for _, nf := range []struct {
		name string
		f    FunctionSettings
	}{{"api", p.API}, {"workflow", p.Workflow}, {"sweeper", p.Sweeper}} {
		name, f := nf.name, nf.f
		if f.MemoryMiB < 128 || f.MemoryMiB > 10240 {
			bad("%s memory %d MiB: Lambda accepts 128 to 10240", name, f.MemoryMiB)
		}
		if f.Timeout < time.Second || f.Timeout > 15*time.Minute || f.Timeout%time.Second != 0 {
			bad("%s timeout %v: want whole seconds from 1s to 15m", name, f.Timeout)
		}
		if f.ReservedConcurrency > 1000 {
			bad("%s reserved concurrency %d: over the default account limit of 1000", name, f.ReservedConcurrency)
		}
	}
	if p.Endpoint == EndpointHTTPAPI && p.API.Timeout > 30*time.Second {
		bad("api timeout %v: an HTTP API gives up on its integration after 30s", p.API.Timeout)
	}
	if p.SnapshotInterval < 1 {
		bad("snapshot interval %d: want at least 1", p.SnapshotInterval)
	}
	if p.SweepGrace < time.Minute {
		bad("sweep grace %v: under a minute the sweeper races every healthy workflow", p.SweepGrace)
	}
	if p.SweepRate < time.Minute || p.SweepRate%time.Minute != 0 {
		bad("sweep rate %v: EventBridge schedules in whole minutes", p.SweepRate)
	}
	p.Retention.validate(bad)
	s := p.Stream
	if s.BatchSize < 1 || s.BatchSize > 10000 {
		bad("stream batch size %d: want 1 to 10000", s.BatchSize)
	}
	if s.RetryAttempts < 0 || s.RetryAttempts > 10000 {
		bad("stream retry attempts %d: want 0 to 10000 (finite)", s.RetryAttempts)
	}
	if s.MaxRecordAge < time.Minute || s.MaxRecordAge > 7*24*time.Hour || s.MaxRecordAge%time.Second != 0 {
		bad("stream max record age %v: want whole seconds from 1m to 7 days", s.MaxRecordAge)
	}
	if s.ParallelizationFactor < 1 || s.ParallelizationFactor > 10 {
		bad("stream parallelization factor %d: want 1 to 10", s.ParallelizationFactor)
	}
	if p.ThrottleRate < 1 || p.ThrottleBurst < 1 {
		bad("throttle rate %d / burst %d: want positive limits", p.ThrottleRate, p.ThrottleBurst)
	}
	if p.NoncurrentVersionDays < 1 {
		bad("noncurrent version expiry %d days: want at least 1", p.NoncurrentVersionDays)
	}
	if p.IteratorAgeAlarm < time.Second {
		bad("iterator age alarm %v: want at least 1s", p.IteratorAgeAlarm)
	}
	if p.PendingAgeAlarm <= p.SweepGrace {
		bad("pending age alarm %v: want more than the sweep grace %v (the sweeper reports entries older than that)", p.PendingAgeAlarm, p.SweepGrace)
	}
	if (p.JWTIssuer == "") != (len(p.JWTAudience) == 0) {
		bad("JWT authorizer needs both an issuer and an audience (issuer %q, audience %q)", p.JWTIssuer, p.JWTAudience)
	}
	if p.JWTIssuer == "" && (p.JWTTenantClaim != "" || p.JWTScopePrefix != "") {
		bad("a JWT tenant claim or scope prefix needs a JWT authorizer (jwtIssuer and jwtAudience)")
	}
	if p.JWTIssuer != "" {
		if u, err := url.Parse(p.JWTIssuer); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("JWT issuer %q: want an https URL", p.JWTIssuer)
		}
		if p.AllowAnonymous {
			bad("allowAnonymous and a JWT authorizer contradict each other: choose one")
		}
		if p.Endpoint == EndpointFunctionURL {
			bad("a function URL cannot check JWTs: use the httpapi endpoint")
		}
	}
	for _, o := range p.CORSOrigins {
		if o == "*" {
			continue
		}
		if u, err := url.Parse(o); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" {
			bad("CORS origin %q: want scheme://host[:port] or *", o)
		}
	}
	if p.AlarmTopicARN != "" && !strings.HasPrefix(p.AlarmTopicARN, "arn:") {
		bad("alarm topic %q is not an ARN", p.AlarmTopicARN)
	}
	if len(errs) > 0 {
		return fmt.Errorf("sheetlog stack props: %s", strings.Join(errs, "; "))
	}
	return nil
}
