// Package lambdaharness runs sheetlog's Lambda functions, as built, on one
// machine and without Docker: moto's server stands in for DynamoDB, its
// stream and S3; each function binary runs under the AWS Lambda Runtime
// Interface Emulator; a local front turns plain HTTP into API Gateway
// events for the API function; a local event source mapping polls the
// table's stream and feeds the workflow function with the filter the
// stack deploys; and the sweeper function is invoked on a short schedule.
//
// The table is created with the stack's own definition (dynamo.CreateTable
// from awsschema), the functions get the environment variables the stack
// sets, and the end-to-end suite (test/e2e) talks to the front by plain
// HTTP, as it would to a deployment. A control endpoint gives the suite
// the powers only a harness has: dropping stream records, reading the
// dead-letter queue and the mapping's counters, writing an entry that no
// API would accept.
package lambdaharness

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog/dynamo"
)

// Options configure a harness. Zero values take the defaults noted.
type Options struct {
	// RIE is the aws-lambda-rie executable.
	RIE string
	// Binaries maps each function name (awsschema.Function*) to its
	// bootstrap executable (ExtractBootstrap takes it out of its zip).
	Binaries map[string]string
	// Emulator runs the bootstraps when they are built for another
	// architecture than this machine's (qemu-aarch64-static for arm64 on
	// x86_64); empty: they run natively.
	Emulator string
	// LogDir receives the emulators' logs (empty: in memory only).
	LogDir string

	// SnapshotInterval of the API function (default 50).
	SnapshotInterval int
	// SweepGrace and SweepEvery: the sweeper's grace period and schedule
	// (defaults 1 s and 2 s: a sweep is one Query per pending index shard,
	// and moto answers each by reading the whole table).
	SweepGrace, SweepEvery time.Duration
	// FaultFailFirst and FaultSheetPrefix go to the workflow function
	// (lambdarun.EnvFaultFailFirst); default 2 (negative: off) and
	// "fault-".
	FaultFailFirst   int
	FaultSheetPrefix string
	// DeadLetterPrefix: the workflow function fails the first 1 +
	// MaxRetries attempts of each workflow of these sheets, so that the
	// mapping dead-letters their records and the next attempt (the
	// sweeper, or a re-drive) succeeds. Default "dlq-".
	DeadLetterPrefix string
	// APIInstances is the API function's concurrency (default 1: see
	// docs/lambda.md for why more is slower on moto).
	APIInstances int
	// BatchSize, MaxRetries and PollInterval of the event source mapping
	// (defaults 10, 3 and 250 ms, about how often Lambda polls a stream).
	BatchSize, MaxRetries int
	PollInterval          time.Duration
	// Retention of the workflow and sweeper functions: K, G and log
	// truncation (defaults 2, 5 s and off; RetainAll: none), small so
	// that the suite sees snapshots retired.
	Retention lambdarun.Retention
	// JWT, when set, puts a JWT authorizer in the front and the API
	// function in JWT mode (see JWTOptions); without it the front lets
	// every request through, as IAM would let an allowed caller.
	JWT *JWTOptions
	// Log receives the harness's own logs.
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = 50
	}
	if o.SweepGrace == 0 {
		o.SweepGrace = time.Second
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = 2 * time.Second
	}
	switch {
	case o.FaultFailFirst == 0:
		o.FaultFailFirst = 2
	case o.FaultFailFirst < 0:
		o.FaultFailFirst = 0
	}
	if o.FaultSheetPrefix == "" {
		o.FaultSheetPrefix = "fault-"
	}
	if o.DeadLetterPrefix == "" {
		o.DeadLetterPrefix = "dlq-"
	}
	if o.APIInstances == 0 {
		o.APIInstances = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = 10
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = 3
	}
	if o.PollInterval == 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	retentionDefaults(&o.Retention)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Harness is a running local deployment.
type Harness struct {
	o      Options
	Moto   *moto.Server
	Config aws.Config
	Table  string
	Bucket string

	API, Workflow, Sweeper *Function
	ESM                    *ESM
	// FrontURL is the API's base URL; ControlURL the control endpoint's.
	FrontURL, ControlURL string

	stores  lambdarun.Stores
	streams StreamsAPI
	tmp     string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	srvs    []*http.Server

	mu      sync.Mutex
	sweeps  SweepStats
	metrics map[string][]float64
}

// SweepStats sums the sweeper's scheduled runs.
type SweepStats struct {
	Invocations int `json:"invocations"`
	Errors      int `json:"errors"`
	lambdarun.SweepResult
}

// Start brings everything up; Close takes it down.
func Start(ctx context.Context, o Options) (_ *Harness, err error) {
	o.defaults()
	for _, fn := range []string{awsschema.FunctionAPI, awsschema.FunctionWorkflow, awsschema.FunctionSweeper} {
		if o.Binaries[fn] == "" {
			return nil, fmt.Errorf("no binary for %s", fn)
		}
	}
	h := &Harness{o: o, metrics: map[string][]float64{}}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h.cancel = cancel

	t0 := time.Now()
	if h.tmp, err = os.MkdirTemp("", "sheetlog-harness-"); err != nil {
		return nil, err
	}
	// internal/moto's server keeps DynamoDB transactions O(items): the
	// log of every sheet lives in one table.
	h.Moto, err = moto.Start(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("starting moto: %w", err)
	}
	h.Config = moto.EmulatorConfig(h.Moto.URL)
	h.Table, h.Bucket = "sheetlog-e2e", "sheetlog-e2e"
	db := dynamodb.NewFromConfig(h.Config)
	// The stack's own table definition: keys, pending index, stream view.
	if err := dynamo.CreateTable(ctx, db, h.Table); err != nil {
		return nil, err
	}
	s3c := s3.NewFromConfig(h.Config, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(h.Bucket)}); err != nil {
		return nil, fmt.Errorf("creating the bucket: %w", err)
	}
	// The continuation token key, one per deployment, as the stack's
	// generated secret.
	tokenKey, err := createTokenKey(ctx, h.Config)
	if err != nil {
		return nil, err
	}
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(h.Table)})
	if err != nil {
		return nil, err
	}
	streamARN := aws.ToString(desc.Table.LatestStreamArn)
	if streamARN == "" {
		return nil, errors.New("the table has no stream")
	}
	if h.o.Retention.QueueURL, err = createRetireQueue(ctx, h.Config); err != nil {
		return nil, err
	}
	cfg := lambdarun.Config{Table: h.Table, Bucket: h.Bucket, S3PathStyle: true}
	if h.stores, err = lambdarun.AWSStoresFromConfig(h.Config, cfg, o.Log); err != nil {
		return nil, err
	}
	o.Log.Info("moto ready, table and bucket created", "url", h.Moto.URL, "ms", time.Since(t0).Milliseconds())

	// What the stack sets, plus the emulator's endpoint and dummy keys.
	base := map[string]string{
		"AWS_ENDPOINT_URL":      h.Moto.URL,
		"AWS_REGION":            moto.Region,
		"AWS_DEFAULT_REGION":    moto.Region,
		"AWS_ACCESS_KEY_ID":     moto.AccessKey,
		"AWS_SECRET_ACCESS_KEY": moto.SecretKey,
		awsschema.EnvTable:      h.Table,
		awsschema.EnvBucket:     h.Bucket,
		awsschema.EnvLogLevel:   "info",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	start := func(name string, instances int, timeout time.Duration, mem int, env map[string]string) (*Function, error) {
		return StartFunction(ctx, o.RIE, FunctionSpec{
			Name: name, Binary: o.Binaries[name], Env: env, Timeout: timeout, MemoryMB: mem,
			Instances: instances, LogDir: o.LogDir, Emulator: o.Emulator,
		})
	}
	apiEnv := with(map[string]string{
		awsschema.EnvSnapshotInterval: strconv.Itoa(o.SnapshotInterval),
		awsschema.EnvCORSOrigins:      strings.Join(CORSOrigins, ","),
		awsschema.EnvTokenKeySecret:   tokenKey,
	})
	maps.Copy(apiEnv, o.JWT.apiEnv())
	authorizer, err := newAuthorizer(runCtx, o.JWT, o.Log)
	if err != nil {
		return nil, fmt.Errorf("the front's JWT authorizer: %w", err)
	}
	if h.API, err = start(awsschema.FunctionAPI, o.APIInstances, 29*time.Second, 512, apiEnv); err != nil {
		return nil, err
	}
	retention := h.o.Retention.Env()
	if h.Workflow, err = start(awsschema.FunctionWorkflow, 1, 60*time.Second, 1024, with(merge(retention, map[string]string{
		lambdarun.EnvFaultFailFirst:   strconv.Itoa(o.FaultFailFirst),
		lambdarun.EnvFaultSheetPrefix: o.FaultSheetPrefix,
		lambdarun.EnvFaultRules:       fmt.Sprintf("%s=%d", o.DeadLetterPrefix, o.MaxRetries+1),
	}))); err != nil {
		return nil, err
	}
	if h.Sweeper, err = start(awsschema.FunctionSweeper, 1, 60*time.Second, 512, with(merge(retention, map[string]string{
		awsschema.EnvSweepGrace: o.SweepGrace.String(),
	}))); err != nil {
		return nil, err
	}

	h.streams = dynamodbstreams.NewFromConfig(h.Config)
	h.ESM, err = NewESM(ESMOptions{
		Streams:       h.streams,
		StreamARN:     streamARN,
		FilterPattern: awsschema.StreamFilterPattern,
		BatchSize:     o.BatchSize,
		MaxRetries:    o.MaxRetries,
		Bisect:        true,
		PollInterval:  o.PollInterval,
		Fn:            h.Workflow,
		FunctionARN:   functionARN(awsschema.FunctionWorkflow),
		DLQFile:       dlqFile(o.LogDir),
		Log:           o.Log,
	})
	if err != nil {
		return nil, err
	}
	h.wg.Add(2)
	go func() { defer h.wg.Done(); _ = h.ESM.Run(runCtx) }()
	go func() { defer h.wg.Done(); h.sweepLoop(runCtx) }()

	if h.FrontURL, err = h.serve(&Front{Fn: h.API, Log: o.Log, CORS: StackCORS(CORSOrigins...), Auth: authorizer}); err != nil {
		return nil, err
	}
	if h.ControlURL, err = h.serve(h.controlHandler()); err != nil {
		return nil, err
	}
	o.Log.Info("harness ready", "front", h.FrontURL, "control", h.ControlURL, "ms", time.Since(t0).Milliseconds())
	return h, nil
}

// CORSOrigins are the browser origins the harness's API allows.
var CORSOrigins = []string{"http://localhost:3000"}

// createTokenKey creates the secret holding the continuation token key
// and returns its ARN.
func createTokenKey(ctx context.Context, cfg aws.Config) (string, error) {
	var b [48]byte
	_, _ = rand.Read(b[:])
	out, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("sheetlog-e2e-token-key"),
		SecretString: aws.String(base64.RawURLEncoding.EncodeToString(b[:])),
	})
	if err != nil {
		return "", fmt.Errorf("creating the token key secret: %w", err)
	}
	return aws.ToString(out.ARN), nil
}

// functionARN is the ARN a function of the harness would have on AWS.
func functionARN(name string) string {
	return "arn:aws:lambda:" + moto.Region + ":000000000000:function:" + name
}

func dlqFile(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "dead-letters.jsonl")
}

func (h *Harness) serve(handler http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	h.srvs = append(h.srvs, srv)
	h.wg.Add(1)
	go func() { defer h.wg.Done(); _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), nil
}

// scheduledEvent is what EventBridge sends a scheduled target.
const scheduledEvent = `{"version":"0","id":"00000000-0000-0000-0000-000000000000","detail-type":"Scheduled Event",` +
	`"source":"aws.events","account":"000000000000","time":"%s","region":"us-east-1",` +
	`"resources":["arn:aws:events:us-east-1:000000000000:rule/sheetlog-sweep"],"detail":{}}`

func (h *Harness) sweepLoop(ctx context.Context) {
	t := time.NewTicker(h.o.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		payload := fmt.Sprintf(scheduledEvent, time.Now().UTC().Format(time.RFC3339))
		res, err := h.Sweeper.Invoke(ctx, []byte(payload))
		if ctx.Err() != nil {
			return
		}
		var r lambdarun.SweepResult
		h.mu.Lock()
		h.sweeps.Invocations++
		if err != nil || res.Failed() || json.Unmarshal(res.Body, &r) != nil {
			h.sweeps.Errors++
			h.o.Log.Warn("sweep failed", "err", err, "functionError", res.FunctionError)
		} else {
			h.sweeps.Found += r.Found
			h.sweeps.Ran += r.Ran
			h.sweeps.Failed += r.Failed
			h.sweeps.Unknown += r.Unknown
			h.sweeps.Deferred += r.Deferred
			h.sweeps.Retire.Add(r.Retire)
		}
		h.mu.Unlock()
	}
}

// Sweeps returns the sweeper's counters.
func (h *Harness) Sweeps() SweepStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sweeps
}

// Metrics returns the samples reported to the control endpoint.
func (h *Harness) Metrics() map[string][]float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]float64{}
	for k, v := range h.metrics {
		out[k] = append([]float64(nil), v...)
	}
	return out
}

// Close stops everything it started, in reverse order.
func (h *Harness) Close() {
	if h.cancel != nil {
		h.cancel()
	}
	for _, s := range h.srvs {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	h.wg.Wait()
	for _, f := range []*Function{h.API, h.Workflow, h.Sweeper} {
		if f != nil {
			f.Stop()
		}
	}
	if h.Moto != nil {
		h.Moto.Stop()
	}
	if h.tmp != "" {
		os.RemoveAll(h.tmp)
	}
}

// Report summarises what the run measured and counted.
func (h *Harness) Report() string {
	var b strings.Builder
	fmt.Fprintf(&b, "functions under the Runtime Interface Emulator:\n")
	for _, f := range []*Function{h.API, h.Workflow, h.Sweeper} {
		if f == nil {
			continue
		}
		s := f.Stats()
		fmt.Fprintf(&b, "  %-16s init %s; first invocation %s, warm median %s; %d invocations, %d function errors, %d restarts\n",
			f.Name(), durations(s.InitDurations), durations(s.FirstInvoke), ms(s.WarmMedian()),
			s.Invocations, s.FunctionErrors, s.Restarts)
	}
	if h.ESM != nil {
		s := h.ESM.Stats()
		fmt.Fprintf(&b, "event source mapping: %d records read, %d filtered out, %d dropped on request, %d invocations, "+
			"%d function errors, %d item failures, %d retries, %d bisects, %d records dead-lettered in %d batches\n",
			s.RecordsRead, s.FilteredOut, s.Dropped, s.Invocations, s.FunctionErrors, s.ItemFailures,
			s.Retries, s.Bisects, s.DeadLettered, len(h.ESM.DeadLetters()))
	}
	sw := h.Sweeps()
	fmt.Fprintf(&b, "sweeper: %d scheduled runs (%d failed); found %d stale entries, ran %d, failed %d, unknown %d, deferred %d\n",
		sw.Invocations, sw.Errors, sw.Found, sw.Ran, sw.Failed, sw.Unknown, sw.Deferred)
	b.WriteString(emfReport(h.EMF()))
	m := h.Metrics()
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v := append([]float64(nil), m[k]...)
		sort.Float64s(v)
		if len(v) == 0 {
			continue
		}
		fmt.Fprintf(&b, "%s: n=%d p50=%.0f ms p90=%.0f ms max=%.0f ms\n", k, len(v),
			v[len(v)/2], v[min(len(v)-1, len(v)*9/10)], v[len(v)-1])
	}
	return b.String()
}

func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = ms(d)
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
