package sheetlogstack

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Context keys read by PropsFromContext: `cdk synth -c key=value` or the
// "context" object of cdk.json. Booleans are "true" or "false"; lists are
// comma-separated; durations are Go durations ("15m").
const (
	CtxStackName        = "stackName"        // default "Sheetlog"
	CtxDev              = "dev"              // Props.Dev
	CtxLocalStack       = "localstack"       // preset for LocalStack, see PropsFromContext
	CtxEndpoint         = "endpoint"         // Props.Endpoint: httpapi or functionurl
	CtxJWTIssuer        = "jwtIssuer"        // Props.JWTIssuer
	CtxJWTAudience      = "jwtAudience"      // Props.JWTAudience
	CtxJWTTenantClaim   = "jwtTenantClaim"   // Props.JWTTenantClaim
	CtxJWTScopePrefix   = "jwtScopePrefix"   // Props.JWTScopePrefix
	CtxAllowAnonymous   = "allowAnonymous"   // Props.AllowAnonymous
	CtxCORSOrigins      = "corsOrigins"      // Props.CORSOrigins
	CtxAssetDir         = "assetDir"         // Props.AssetDir
	CtxArchitecture     = "architecture"     // Props.Architecture
	CtxLogLevel         = "logLevel"         // Props.LogLevel
	CtxSnapshotInterval = "snapshotInterval" // Props.SnapshotInterval
	CtxSweepGrace       = "sweepGrace"       // Props.SweepGrace
	CtxSweepRate        = "sweepRate"        // Props.SweepRate
	CtxAlarmTopicARN    = "alarmTopicArn"    // Props.AlarmTopicARN
	CtxSnapshotRetain   = "snapshotRetain"   // Props.Retention.Retain (0: keep every snapshot)
	CtxSnapshotGrace    = "snapshotGrace"    // Props.Retention.Grace
	CtxTruncateLog      = "truncateLog"      // Props.Retention.TruncateLog
	CtxTracing          = "tracing"          // !Props.DisableTracing (default true)
	// CtxReservedConcurrency=false leaves every function unreserved (an
	// account whose concurrency limit is too low for any reservation).
	CtxReservedConcurrency = "reservedConcurrency"
)

// DefaultStackName is the CloudFormation stack name unless the stackName
// context value says otherwise.
const DefaultStackName = "Sheetlog"

// StackName returns the stackName context value or DefaultStackName.
func StackName(node constructs.Node) string {
	if v, ok := node.TryGetContext(jsii.String(CtxStackName)).(string); ok && v != "" {
		return v
	}
	return DefaultStackName
}

// PropsFromContext reads the knobs that make sense on a command line from
// the app's context. Every other field keeps its default.
//
// localstack=true is a preset for LocalStack: unless endpoint is given,
// it serves the API from a Lambda function URL (LocalStack's community
// edition does not emulate HTTP APIs). The event source mapping stays as
// on AWS: LocalStack accepts BisectBatchOnFunctionError and ignores it
// (see localstack/README.md). It does not imply dev or allowAnonymous:
// say those too.
func PropsFromContext(node constructs.Node) (Props, error) {
	var (
		p    Props
		errs []error
	)
	get := func(key string) (string, bool) {
		switch v := node.TryGetContext(jsii.String(key)).(type) {
		case nil:
			return "", false
		case string:
			return strings.TrimSpace(v), true
		case bool:
			return strconv.FormatBool(v), true
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64), true
		default:
			errs = append(errs, fmt.Errorf("context %s: unsupported value %v", key, v))
			return "", false
		}
	}
	boolean := func(key string) bool {
		s, ok := get(key)
		if !ok || s == "" {
			return false
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("context %s=%q: want true or false", key, s))
		}
		return b
	}
	list := func(key string) []string {
		s, _ := get(key)
		var out []string
		for _, f := range strings.Split(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	duration := func(key string) time.Duration {
		s, ok := get(key)
		if !ok || s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("context %s=%q: want a positive Go duration such as 15m", key, s))
		}
		return d
	}
	str := func(key string) string { s, _ := get(key); return s }

	p.Dev = boolean(CtxDev)
	p.AllowAnonymous = boolean(CtxAllowAnonymous)
	p.Endpoint = Endpoint(str(CtxEndpoint))
	if boolean(CtxLocalStack) && p.Endpoint == "" {
		p.Endpoint = EndpointFunctionURL
	}
	p.JWTIssuer = str(CtxJWTIssuer)
	p.JWTAudience = list(CtxJWTAudience)
	p.JWTTenantClaim = str(CtxJWTTenantClaim)
	p.JWTScopePrefix = str(CtxJWTScopePrefix)
	p.CORSOrigins = list(CtxCORSOrigins)
	p.AssetDir = str(CtxAssetDir)
	p.Architecture = str(CtxArchitecture)
	p.LogLevel = str(CtxLogLevel)
	p.AlarmTopicARN = str(CtxAlarmTopicARN)
	if s := str(CtxSnapshotInterval); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("context %s=%q: want a positive integer", CtxSnapshotInterval, s))
		}
		p.SnapshotInterval = n
	}
	if s, ok := get(CtxTracing); ok && s != "" {
		p.DisableTracing = !boolean(CtxTracing)
	}
	if s, ok := get(CtxReservedConcurrency); ok && s != "" {
		if reserve, err := strconv.ParseBool(s); err != nil {
			errs = append(errs, fmt.Errorf("context %s=%q: want true or false", CtxReservedConcurrency, s))
		} else if !reserve {
			p.API.ReservedConcurrency, p.Workflow.ReservedConcurrency, p.Sweeper.ReservedConcurrency = -1, -1, -1
		}
	}
	p.SweepGrace = duration(CtxSweepGrace)
	p.SweepRate = duration(CtxSweepRate)
	p.Retention = retentionFromContext(str, boolean, &errs)
	return p, errors.Join(errs...)
}
