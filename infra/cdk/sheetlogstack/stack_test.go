package sheetlogstack

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// defaults is the stack as `cdk deploy` makes it with no context.
func defaults(t *testing.T) *synthesized { return synth(t, nil) }

func TestTableFollowsAwsschema(t *testing.T) {
	s := defaults(t)
	id, table := s.only(t, "AWS::DynamoDB::Table")
	if id != logicalID(s, s.stack.Table) {
		t.Errorf("table logical id %s, stack.Table is %s", id, logicalID(s, s.stack.Table))
	}
	p := props(table)
	schema := awsschema.EventLogTable
	wantKeys := []any{
		map[string]any{"AttributeName": schema.PartitionKey.Name, "KeyType": "HASH"},
		map[string]any{"AttributeName": schema.SortKey.Name, "KeyType": "RANGE"},
	}
	if !jsonEqual(p["KeySchema"], wantKeys) {
		t.Errorf("KeySchema %s, want %s", show(p["KeySchema"]), show(wantKeys))
	}
	// Every key attribute of the table and its indexes is defined once,
	// with awsschema's type.
	want := map[string]string{schema.PartitionKey.Name: string(schema.PartitionKey.Type), schema.SortKey.Name: string(schema.SortKey.Type)}
	for _, ix := range schema.Indexes {
		want[ix.PartitionKey.Name] = string(ix.PartitionKey.Type)
		if ix.SortKey.Name != "" {
			want[ix.SortKey.Name] = string(ix.SortKey.Type)
		}
	}
	got := map[string]string{}
	for _, a := range list(p["AttributeDefinitions"]) {
		a := a.(map[string]any)
		got[a["AttributeName"].(string)] = a["AttributeType"].(string)
	}
	if !jsonEqual(got, want) {
		t.Errorf("AttributeDefinitions %v, want %v", got, want)
	}
	if p["BillingMode"] != schema.BillingMode {
		t.Errorf("BillingMode %v, want %s", p["BillingMode"], schema.BillingMode)
	}
	if !jsonEqual(p["StreamSpecification"], map[string]any{"StreamViewType": schema.StreamView}) {
		t.Errorf("StreamSpecification %s, want %s", show(p["StreamSpecification"]), schema.StreamView)
	}
	if !jsonEqual(p["PointInTimeRecoverySpecification"], map[string]any{"PointInTimeRecoveryEnabled": true}) {
		t.Errorf("PointInTimeRecoverySpecification %s", show(p["PointInTimeRecoverySpecification"]))
	}
	if p["DeletionProtectionEnabled"] != true {
		t.Errorf("DeletionProtectionEnabled %v, want true", p["DeletionProtectionEnabled"])
	}
	if table["DeletionPolicy"] != "Retain" || table["UpdateReplacePolicy"] != "Retain" {
		t.Errorf("DeletionPolicy %v / UpdateReplacePolicy %v, want Retain", table["DeletionPolicy"], table["UpdateReplacePolicy"])
	}
	if _, named := p["TableName"]; named {
		t.Errorf("TableName is set: a fixed name forbids two stacks in one account and replacements")
	}

	var wantGSI []any
	for _, ix := range schema.Indexes {
		keys := []any{map[string]any{"AttributeName": ix.PartitionKey.Name, "KeyType": "HASH"}}
		if ix.SortKey.Name != "" {
			keys = append(keys, map[string]any{"AttributeName": ix.SortKey.Name, "KeyType": "RANGE"})
		}
		proj := map[string]any{"ProjectionType": ix.Projection}
		if len(ix.NonKeyAttributes) > 0 {
			proj["NonKeyAttributes"] = ix.NonKeyAttributes
		}
		wantGSI = append(wantGSI, map[string]any{"IndexName": ix.Name, "KeySchema": keys, "Projection": proj})
	}
	if !jsonEqual(p["GlobalSecondaryIndexes"], wantGSI) {
		t.Errorf("GlobalSecondaryIndexes %s,\nwant %s", show(p["GlobalSecondaryIndexes"]), show(wantGSI))
	}
	if !slices.ContainsFunc(schema.Indexes, func(ix awsschema.Index) bool { return ix.Name == awsschema.PendingIndexName }) {
		t.Errorf("awsschema has no %s index", awsschema.PendingIndexName)
	}
}

func TestDevRelaxesRetention(t *testing.T) {
	s := synth(t, map[string]string{CtxDev: "true"})
	_, table := s.only(t, "AWS::DynamoDB::Table")
	if props(table)["DeletionProtectionEnabled"] != false {
		t.Errorf("dev: DeletionProtectionEnabled %v, want false", props(table)["DeletionProtectionEnabled"])
	}
	for _, typ := range []string{"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Logs::LogGroup"} {
		for id, r := range s.resources(typ) {
			if r["DeletionPolicy"] != "Delete" {
				t.Errorf("dev: %s %s DeletionPolicy %v, want Delete", typ, id, r["DeletionPolicy"])
			}
		}
	}
	// And the default keeps everything holding data.
	for _, typ := range []string{"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::Logs::LogGroup"} {
		for id, r := range defaults(t).resources(typ) {
			if r["DeletionPolicy"] != "Retain" {
				t.Errorf("default: %s %s DeletionPolicy %v, want Retain", typ, id, r["DeletionPolicy"])
			}
		}
	}
}

func TestBuckets(t *testing.T) {
	s := defaults(t)
	blobs := logicalID(s, s.stack.Bucket)
	buckets := s.resources("AWS::S3::Bucket")
	if len(buckets) != 2 {
		t.Fatalf("want the blob bucket and its access log bucket, have %d buckets", len(buckets))
	}
	for id, b := range buckets {
		p := props(b)
		checks := map[string]any{
			"PublicAccessBlockConfiguration": map[string]any{
				"BlockPublicAcls": true, "BlockPublicPolicy": true, "IgnorePublicAcls": true, "RestrictPublicBuckets": true,
			},
			"BucketEncryption": map[string]any{"ServerSideEncryptionConfiguration": []any{
				map[string]any{"ServerSideEncryptionByDefault": map[string]any{"SSEAlgorithm": "AES256"}},
			}},
			"OwnershipControls": map[string]any{"Rules": []any{map[string]any{"ObjectOwnership": "BucketOwnerEnforced"}}},
		}
		for k, want := range checks {
			if !jsonEqual(p[k], want) {
				t.Errorf("bucket %s: %s = %s, want %s", id, k, show(p[k]), show(want))
			}
		}
		if _, ok := p["AccessControl"]; ok {
			t.Errorf("bucket %s uses ACLs: AccessControl %v", id, p["AccessControl"])
		}
		rules := list(props(b)["LifecycleConfiguration"].(map[string]any)["Rules"])
		if !slices.ContainsFunc(rules, func(r any) bool {
			return jsonEqual(r.(map[string]any)["AbortIncompleteMultipartUpload"], map[string]any{"DaysAfterInitiation": 1})
		}) {
			t.Errorf("bucket %s: no rule aborts incomplete multipart uploads: %s", id, show(rules))
		}
		if b["DeletionPolicy"] != "Retain" {
			t.Errorf("bucket %s DeletionPolicy %v, want Retain", id, b["DeletionPolicy"])
		}
	}
	logging, _ := props(buckets[blobs])["LoggingConfiguration"].(map[string]any)
	if logging == nil || logging["DestinationBucketName"] == nil {
		t.Errorf("blob bucket has no server access logs: %s", show(props(buckets[blobs])))
	}

	// TLS only, for both buckets: a deny of every request without
	// aws:SecureTransport.
	for _, bucket := range []string{blobs} {
		found := false
		for _, pol := range s.resources("AWS::S3::BucketPolicy") {
			if !jsonEqual(props(pol)["Bucket"], ref(bucket)) {
				continue
			}
			for _, st := range list(props(pol)["PolicyDocument"].(map[string]any)["Statement"]) {
				st := st.(map[string]any)
				if st["Effect"] == "Deny" && jsonEqual(st["Condition"], map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}) {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("bucket %s has no TLS-only policy", bucket)
		}
	}
	check(t, "access log bucket TLS-only policy", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::S3::BucketPolicy"), map[string]any{
			"PolicyDocument": assertions.Match_ObjectLike(&map[string]any{
				"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Effect":    "Deny",
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})}),
			}),
		}, jsii.Number(2))
	})
}

func TestFunctions(t *testing.T) {
	s := defaults(t)
	// Exactly the three functions: no hidden custom resource Lambdas (log
	// retention, bucket auto-delete) that would need their own runtime.
	check(t, "function count", func() { s.tpl.ResourceCountIs(jsii.String("AWS::Lambda::Function"), jsii.Number(3)) })

	table, bucket := ref(logicalID(s, s.stack.Table)), ref(logicalID(s, s.stack.Bucket))
	retireQueue := ref(logicalID(s, s.stack.RetireQueue))
	cases := []struct {
		name     string
		fn       string
		settings FunctionSettings
		env      map[string]any
	}{
		{awsschema.FunctionAPI, logicalID(s, s.stack.API), DefaultAPI, map[string]any{
			awsschema.EnvTable: table, awsschema.EnvBucket: bucket,
			awsschema.EnvSnapshotInterval: "100", awsschema.EnvCORSOrigins: "", awsschema.EnvLogLevel: "info",
			awsschema.EnvTokenKeySecret: ref(logicalID(s, s.stack.TokenKey)),
			awsschema.EnvAPIAuth:        awsschema.APIAuthIAM,
		}},
		{awsschema.FunctionWorkflow, logicalID(s, s.stack.Workflow), DefaultWorkflow, map[string]any{
			awsschema.EnvTable: table, awsschema.EnvBucket: bucket, awsschema.EnvLogLevel: "info",
			awsschema.EnvSnapshotRetain: "2", awsschema.EnvSnapshotGrace: "10m0s", awsschema.EnvTruncateLog: "false",
			awsschema.EnvRetireQueueURL: retireQueue,
		}},
		{awsschema.FunctionSweeper, logicalID(s, s.stack.Sweeper), DefaultSweeper, map[string]any{
			awsschema.EnvTable: table, awsschema.EnvBucket: bucket,
			awsschema.EnvSweepGrace: "15m0s", awsschema.EnvLogLevel: "info",
			awsschema.EnvSnapshotRetain: "2", awsschema.EnvSnapshotGrace: "10m0s", awsschema.EnvTruncateLog: "false",
			awsschema.EnvRetireQueueURL: retireQueue,
		}},
	}
	fns := s.resources("AWS::Lambda::Function")
	keys := map[string]bool{}
	for _, c := range cases {
		c.env[awsschema.EnvMetricsNamespace] = awsschema.MetricsNamespace(DefaultStackName) // observability.go
		fn, ok := fns[c.fn]
		if !ok {
			t.Errorf("%s: no function %s", c.name, c.fn)
			continue
		}
		p := props(fn)
		want := map[string]any{
			"Runtime":       "provided.al2023",
			"Architectures": []any{"arm64"},
			"Handler":       "bootstrap",
			"MemorySize":    c.settings.MemoryMiB,
			"Timeout":       c.settings.Timeout.Seconds(),
			"LoggingConfig": map[string]any{"LogFormat": "JSON", "LogGroup": ref(logicalIDOfLogGroup(t, s, p))},
			"Environment":   map[string]any{"Variables": c.env},
		}
		for k, v := range want {
			if !jsonEqual(p[k], v) {
				t.Errorf("%s: %s = %s, want %s", c.name, k, show(p[k]), show(v))
			}
		}
		// Bounded fan-out for the workflow, no overlapping sweeps; the
		// API is bounded by the HTTP API's throttling instead.
		if got, reserved := p["ReservedConcurrentExecutions"]; c.settings.ReservedConcurrency > 0 {
			if got != float64(c.settings.ReservedConcurrency) {
				t.Errorf("%s: ReservedConcurrentExecutions %v, want %d", c.name, got, c.settings.ReservedConcurrency)
			}
		} else if reserved {
			t.Errorf("%s: reserved concurrency %v, want none", c.name, got)
		}
		// It depends on its role's policy (explicitly: nothing else says
		// so) and not on the role (Fn::GetAtt says so already).
		if want := []any{logicalIDOfPolicy(t, s, roleOf(t, s, c.fn))}; !jsonEqual(fn["DependsOn"], want) {
			t.Errorf("%s: DependsOn %s, want %s", c.name, show(fn["DependsOn"]), show(want))
		}
		if _, ok := p["FunctionName"]; ok {
			t.Errorf("%s: FunctionName is fixed", c.name)
		}
		// The code is the zip of that function (each dummy zip differs).
		code, _ := p["Code"].(map[string]any)
		key, _ := code["S3Key"].(string)
		if !strings.HasSuffix(key, ".zip") || keys[key] {
			t.Errorf("%s: code %s is not its own zip", c.name, show(code))
		}
		keys[key] = true
	}

	// Sizing props reach the template.
	st := build(t, nil, func(p *Props) {
		p.Workflow = FunctionSettings{MemoryMiB: 2048, Timeout: 600e9, ReservedConcurrency: 4}
		p.Architecture = "x86_64"
	})
	tpl := assertions.Template_FromStack(st.Stack, nil)
	check(t, "workflow sizing", func() {
		tpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
			"MemorySize": 2048, "Timeout": 600, "ReservedConcurrentExecutions": 4, "Architectures": []any{"x86_64"},
		})
	})
	// An account too small for any reservation.
	for id, fn := range synth(t, map[string]string{CtxReservedConcurrency: "false"}).resources("AWS::Lambda::Function") {
		if v, ok := props(fn)["ReservedConcurrentExecutions"]; ok {
			t.Errorf("reservedConcurrency=false: %s reserves %v", id, v)
		}
	}
}

// logicalIDOfPolicy is the logical id of the one IAM policy attached to a
// role.
func logicalIDOfPolicy(t *testing.T, s *synthesized, role string) string {
	t.Helper()
	var ids []string
	for id, pol := range s.resources("AWS::IAM::Policy") {
		if jsonEqual(props(pol)["Roles"], []any{ref(role)}) {
			ids = append(ids, id)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("role %s has policies %v, want exactly one", role, ids)
	}
	return ids[0]
}

// logicalIDOfLogGroup is the log group a function's LoggingConfig names,
// which must be one of the stack's own log groups.
func logicalIDOfLogGroup(t *testing.T, s *synthesized, fnProps map[string]any) string {
	t.Helper()
	lc, _ := fnProps["LoggingConfig"].(map[string]any)
	r, _ := lc["LogGroup"].(map[string]any)
	id, _ := r["Ref"].(string)
	if _, ok := s.resources("AWS::Logs::LogGroup")[id]; !ok {
		t.Errorf("function logs to %s, not a log group of the stack", show(lc))
	}
	return id
}

func TestEventSourceMapping(t *testing.T) {
	s := defaults(t)
	_, esm := s.only(t, "AWS::Lambda::EventSourceMapping")
	p := props(esm)
	want := map[string]any{
		"FunctionName":               ref(logicalID(s, s.stack.Workflow)),
		"EventSourceArn":             getAtt(logicalID(s, s.stack.Table), "StreamArn"),
		"StartingPosition":           "TRIM_HORIZON",
		"FunctionResponseTypes":      []any{"ReportBatchItemFailures"},
		"BisectBatchOnFunctionError": true,
		"MaximumRetryAttempts":       DefaultRetryAttempts,
		"MaximumRecordAgeInSeconds":  DefaultMaxRecordAge.Seconds(),
		"BatchSize":                  DefaultBatchSize,
		"ParallelizationFactor":      1,
		"DestinationConfig": map[string]any{"OnFailure": map[string]any{
			"Destination": getAtt(logicalID(s, s.stack.DLQ), "Arn"),
		}},
	}
	for k, v := range want {
		if !jsonEqual(p[k], v) {
			t.Errorf("%s = %s, want %s", k, show(p[k]), show(v))
		}
	}

	// Created only once its role may read the stream and send to the
	// dead-letter queue.
	policy := logicalIDOfPolicy(t, s, roleOf(t, s, logicalID(s, s.stack.Workflow)))
	if !slices.Contains(list(esm["DependsOn"]), any(policy)) {
		t.Errorf("the event source mapping DependsOn %s, not its role's policy %s", show(esm["DependsOn"]), policy)
	}

	// The filter is exactly awsschema's, compared as JSON values.
	filters := list(p["FilterCriteria"].(map[string]any)["Filters"])
	if len(filters) != 1 {
		t.Fatalf("want one filter, have %s", show(filters))
	}
	pattern, _ := filters[0].(map[string]any)["Pattern"].(string)
	var got any
	if err := json.Unmarshal([]byte(pattern), &got); err != nil {
		t.Fatalf("filter pattern %q is not JSON: %v", pattern, err)
	}
	var wantPattern any
	if err := json.Unmarshal([]byte(awsschema.StreamFilterPattern), &wantPattern); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(got, wantPattern) {
		t.Errorf("filter pattern %s, want awsschema.StreamFilterPattern %s", pattern, awsschema.StreamFilterPattern)
	}
	if !jsonEqual(got, awsschema.StreamFilter()) {
		t.Errorf("filter pattern %s differs from awsschema.StreamFilter()", pattern)
	}

	// LocalStack: the same mapping (it accepts bisect and ignores it).
	ls := synth(t, map[string]string{CtxLocalStack: "true", CtxDev: "true", CtxAllowAnonymous: "true"})
	_, lesm := ls.only(t, "AWS::Lambda::EventSourceMapping")
	for _, k := range []string{"FilterCriteria", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "DestinationConfig",
		"FunctionResponseTypes", "BisectBatchOnFunctionError", "BatchSize", "StartingPosition"} {
		if !jsonEqual(props(lesm)[k], p[k]) {
			t.Errorf("localstack: %s = %s, want %s as in the default stack", k, show(props(lesm)[k]), show(p[k]))
		}
	}
}

func TestDeadLetterQueue(t *testing.T) {
	s := defaults(t)
	// The DLQ and the retire queue (retention_test.go).
	id := logicalID(s, s.stack.DLQ)
	q, ok := s.resources("AWS::SQS::Queue")[id]
	if n := len(s.resources("AWS::SQS::Queue")); !ok || n != 2 {
		t.Fatalf("queues: the DLQ %v, %d in all; want the DLQ and the retire queue", ok, n)
	}
	if props(q)["SqsManagedSseEnabled"] != true {
		t.Errorf("DLQ is not encrypted: %s", show(props(q)))
	}
	if props(q)["MessageRetentionPeriod"] != float64(14*24*3600) {
		t.Errorf("DLQ retention %v, want 14 days", props(q)["MessageRetentionPeriod"])
	}
	check(t, "DLQ TLS-only policy", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
			"Queues": []any{ref(id)},
			"PolicyDocument": assertions.Match_ObjectLike(&map[string]any{
				"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Effect":    "Deny",
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})}),
			}),
		})
	})
}

func TestSweeperSchedule(t *testing.T) {
	s := defaults(t)
	_, rule := s.only(t, "AWS::Events::Rule")
	p := props(rule)
	if p["ScheduleExpression"] != "rate(5 minutes)" {
		t.Errorf("ScheduleExpression %v", p["ScheduleExpression"])
	}
	targets := list(p["Targets"])
	if len(targets) != 1 {
		t.Fatalf("targets %s", show(targets))
	}
	tg := targets[0].(map[string]any)
	if !jsonEqual(tg["Arn"], getAtt(logicalID(s, s.stack.Sweeper), "Arn")) {
		t.Errorf("target %s is not the sweeper", show(tg["Arn"]))
	}
	if !jsonEqual(tg["RetryPolicy"], map[string]any{"MaximumRetryAttempts": 0}) {
		t.Errorf("RetryPolicy %s, want no retries", show(tg["RetryPolicy"]))
	}
	// EventBridge invokes asynchronously: no Lambda retries either.
	_, eic := s.only(t, "AWS::Lambda::EventInvokeConfig")
	if !jsonEqual(props(eic)["FunctionName"], ref(logicalID(s, s.stack.Sweeper))) || props(eic)["MaximumRetryAttempts"] != float64(0) {
		t.Errorf("async invoke config %s, want the sweeper with no retries", show(props(eic)))
	}
	// Schedule and grace from the context.
	c := synth(t, map[string]string{CtxSweepRate: "10m", CtxSweepGrace: "30m"})
	_, rule = c.only(t, "AWS::Events::Rule")
	if props(rule)["ScheduleExpression"] != "rate(10 minutes)" {
		t.Errorf("sweepRate=10m: ScheduleExpression %v", props(rule)["ScheduleExpression"])
	}
	sweeper := c.resources("AWS::Lambda::Function")[logicalID(c, c.stack.Sweeper)]
	if v := props(sweeper)["Environment"].(map[string]any)["Variables"].(map[string]any)[awsschema.EnvSweepGrace]; v != "30m0s" {
		t.Errorf("sweepGrace=30m: %s = %v", awsschema.EnvSweepGrace, v)
	}
}

func TestHTTPAPI(t *testing.T) {
	s := defaults(t)
	_, api := s.only(t, "AWS::ApiGatewayV2::Api")
	if props(api)["ProtocolType"] != "HTTP" {
		t.Errorf("ProtocolType %v", props(api)["ProtocolType"])
	}
	if _, ok := props(api)["CorsConfiguration"]; ok {
		t.Errorf("CORS configured without origins: %s", show(props(api)["CorsConfiguration"]))
	}
	routes := map[string]string{}
	for _, r := range s.resources("AWS::ApiGatewayV2::Route") {
		if isWebPageRoute(r) {
			continue // TestWebPageRoutes
		}
		routes[props(r)["RouteKey"].(string)] = props(r)["AuthorizationType"].(string)
	}
	want := map[string]string{"ANY /v1/{proxy+}": "AWS_IAM", "ANY /healthz": "AWS_IAM"}
	if !jsonEqual(routes, want) {
		t.Errorf("routes %v, want %v (IAM on every route: no anonymous access by default)", routes, want)
	}
	check(t, "no authorizer resource with IAM", func() {
		s.tpl.ResourceCountIs(jsii.String("AWS::ApiGatewayV2::Authorizer"), jsii.Number(0))
	})
	check(t, "no function URL", func() { s.tpl.ResourceCountIs(jsii.String("AWS::Lambda::Url"), jsii.Number(0)) })

	_, stage := s.only(t, "AWS::ApiGatewayV2::Stage")
	sp := props(stage)
	if sp["StageName"] != "$default" || sp["AutoDeploy"] != true {
		t.Errorf("stage %s", show(sp))
	}
	if !jsonEqual(sp["DefaultRouteSettings"], map[string]any{"ThrottlingRateLimit": DefaultThrottleRate, "ThrottlingBurstLimit": DefaultThrottleBurst}) {
		t.Errorf("throttling %s", show(sp["DefaultRouteSettings"]))
	}
	als, _ := sp["AccessLogSettings"].(map[string]any)
	dest, _ := als["DestinationArn"].(map[string]any)
	if len(list(dest["Fn::GetAtt"])) != 2 || list(dest["Fn::GetAtt"])[1] != "Arn" {
		t.Errorf("access log destination %s", show(dest))
	} else if lg, ok := s.resources("AWS::Logs::LogGroup")[list(dest["Fn::GetAtt"])[0].(string)]; !ok {
		t.Errorf("access logs go to %s, not a log group of the stack", show(dest))
	} else if props(lg)["RetentionInDays"] != float64(DefaultLogRetentionDays) {
		t.Errorf("access log retention %v", props(lg)["RetentionInDays"])
	}
	var format map[string]string
	if err := json.Unmarshal([]byte(als["Format"].(string)), &format); err != nil || format["requestId"] != "$context.requestId" || format["status"] != "$context.status" {
		t.Errorf("access log format %v is not the JSON format: %v", als["Format"], err)
	}
	// The integration invokes the API Lambda with the 2.0 payload.
	_, integ := s.only(t, "AWS::ApiGatewayV2::Integration")
	if props(integ)["PayloadFormatVersion"] != "2.0" || props(integ)["IntegrationType"] != "AWS_PROXY" {
		t.Errorf("integration %s", show(props(integ)))
	}
	if !strings.Contains(show(props(integ)["IntegrationUri"]), logicalID(s, s.stack.API)) {
		t.Errorf("integration %s does not call the API Lambda", show(props(integ)["IntegrationUri"]))
	}
}

func TestJWTAuthorizer(t *testing.T) {
	s := synth(t, map[string]string{CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "sheetlog, other"})
	_, auth := s.only(t, "AWS::ApiGatewayV2::Authorizer")
	p := props(auth)
	if p["AuthorizerType"] != "JWT" || !jsonEqual(p["JwtConfiguration"], map[string]any{
		"Issuer": "https://issuer.example.com/", "Audience": []any{"sheetlog", "other"},
	}) {
		t.Errorf("authorizer %s", show(p))
	}
	for id, r := range s.resources("AWS::ApiGatewayV2::Route") {
		if props(r)["AuthorizationType"] != "JWT" && !isWebPageRoute(r) {
			t.Errorf("route %s %v: AuthorizationType %v, want JWT", id, props(r)["RouteKey"], props(r)["AuthorizationType"])
		}
	}
	if _, ok := s.json["Outputs"].(map[string]any)[OutputExecuteAPIARN]; ok {
		t.Errorf("JWT stack outputs %s, which only IAM callers need", OutputExecuteAPIARN)
	}
}

func TestAnonymousIsExplicit(t *testing.T) {
	s := synth(t, map[string]string{CtxAllowAnonymous: "true"})
	for id, r := range s.resources("AWS::ApiGatewayV2::Route") {
		if props(r)["AuthorizationType"] != "NONE" {
			t.Errorf("allowAnonymous: route %s AuthorizationType %v, want NONE", id, props(r)["AuthorizationType"])
		}
	}
	// No configuration but allowAnonymous has an anonymous way in.
	for name, ctx := range map[string]map[string]string{
		"default":      nil,
		"dev":          {CtxDev: "true"},
		"jwt":          {CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "a"},
		"cors":         {CtxCORSOrigins: "https://app.example.com"},
		"function URL": {CtxEndpoint: "functionurl"},
		"localstack":   {CtxLocalStack: "true", CtxDev: "true"},
	} {
		s := synth(t, ctx)
		for id, r := range s.resources("AWS::ApiGatewayV2::Route") {
			if strings.HasPrefix(props(r)["RouteKey"].(string), "OPTIONS ") {
				continue // CORS preflight: TestCORSPreflightRoutes
			}
			if at := props(r)["AuthorizationType"]; (at == "NONE" || at == nil) && !isWebPageRoute(r) {
				t.Errorf("%s: route %s is anonymous", name, id)
			}
		}
		for id, r := range s.resources("AWS::Lambda::Url") {
			if props(r)["AuthType"] != "AWS_IAM" {
				t.Errorf("%s: function URL %s AuthType %v", name, id, props(r)["AuthType"])
			}
		}
		for id, r := range s.resources("AWS::Lambda::Permission") {
			if props(r)["FunctionUrlAuthType"] == "NONE" || props(r)["Principal"] == "*" {
				t.Errorf("%s: permission %s lets anyone invoke: %s", name, id, show(props(r)))
			}
		}
	}
}

func TestCORS(t *testing.T) {
	origins := "https://app.example.com,http://localhost:5173"
	s := synth(t, map[string]string{CtxCORSOrigins: origins})
	_, api := s.only(t, "AWS::ApiGatewayV2::Api")
	cors, _ := props(api)["CorsConfiguration"].(map[string]any)
	if !jsonEqual(cors["AllowOrigins"], strings.Split(origins, ",")) {
		t.Errorf("AllowOrigins %s", show(cors["AllowOrigins"]))
	}
	methods := strs(cors["AllowMethods"])
	sort.Strings(methods)
	if !jsonEqual(methods, []string{"GET", "HEAD", "OPTIONS", "POST"}) {
		t.Errorf("AllowMethods %v", methods)
	}
	api2 := s.resources("AWS::Lambda::Function")[logicalID(s, s.stack.API)]
	if v := props(api2)["Environment"].(map[string]any)["Variables"].(map[string]any)[awsschema.EnvCORSOrigins]; v != origins {
		t.Errorf("%s = %v, want %s", awsschema.EnvCORSOrigins, v, origins)
	}
}

func TestLocalStackPreset(t *testing.T) {
	s := synth(t, map[string]string{CtxLocalStack: "true", CtxDev: "true", CtxAllowAnonymous: "true"})
	for _, typ := range []string{"AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route", "AWS::ApiGatewayV2::Stage"} {
		if n := len(s.resources(typ)); n != 0 {
			t.Errorf("localstack: %d %s (LocalStack's free image has no HTTP APIs)", n, typ)
		}
	}
	id, url := s.only(t, "AWS::Lambda::Url")
	if props(url)["AuthType"] != "NONE" || !jsonEqual(props(url)["TargetFunctionArn"], getAtt(logicalID(s, s.stack.API), "Arn")) {
		t.Errorf("function URL %s", show(props(url)))
	}
	out := s.json["Outputs"].(map[string]any)[OutputAPIURL].(map[string]any)
	if !jsonEqual(out["Value"], getAtt(id, "FunctionUrl")) {
		t.Errorf("%s = %s, want the function URL", OutputAPIURL, show(out["Value"]))
	}
}

func TestIAMLeastPrivilege(t *testing.T) {
	for name, ctx := range map[string]map[string]string{
		"default":    nil,
		"localstack": {CtxLocalStack: "true", CtxDev: "true", CtxAllowAnonymous: "true"},
	} {
		t.Run(name, func(t *testing.T) { checkIAM(t, synth(t, ctx)) })
	}
}

// statement is one IAM statement, its actions and resources as JSON text.
type statement struct {
	effect    string
	actions   []string
	resources []string
}

// roleStatements maps each role's logical id to the statements of the
// policies attached to it.
func roleStatements(t *testing.T, s *synthesized) map[string][]statement {
	t.Helper()
	out := map[string][]statement{}
	for id, pol := range s.resources("AWS::IAM::Policy") {
		var stmts []statement
		for _, st := range list(props(pol)["PolicyDocument"].(map[string]any)["Statement"]) {
			st := st.(map[string]any)
			if _, ok := st["NotAction"]; ok {
				t.Errorf("policy %s uses NotAction", id)
			}
			var res []string
			for _, r := range list(st["Resource"]) {
				res = append(res, show(r))
			}
			stmts = append(stmts, statement{st["Effect"].(string), strs(st["Action"]), res})
		}
		for _, r := range list(props(pol)["Roles"]) {
			role := r.(map[string]any)["Ref"].(string)
			out[role] = append(out[role], stmts...)
		}
	}
	return out
}

func roleOf(t *testing.T, s *synthesized, fnID string) string {
	t.Helper()
	fn := s.resources("AWS::Lambda::Function")[fnID]
	att := list(props(fn)["Role"].(map[string]any)["Fn::GetAtt"])
	return att[0].(string)
}

func checkIAM(t *testing.T, s *synthesized) {
	stmts := roleStatements(t, s)
	roles := s.resources("AWS::IAM::Role")
	for id, r := range roles {
		if mp, ok := props(r)["ManagedPolicyArns"]; ok {
			t.Errorf("role %s has managed policies %s", id, show(mp))
		}
	}
	tableArn := show(getAtt(logicalID(s, s.stack.Table), "Arn"))
	streamArn := show(getAtt(logicalID(s, s.stack.Table), "StreamArn"))
	bucketArn := show(getAtt(logicalID(s, s.stack.Bucket), "Arn"))
	streamActions := []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}

	for role, sts := range stmts {
		for _, st := range sts {
			for _, a := range st.actions {
				if strings.Contains(a, "*") {
					t.Errorf("role %s: wildcard action %s", role, a)
				}
			}
			// Only ListStreams and X-Ray's writes, which have no
			// resource-level permissions, may apply to every resource.
			if slices.Contains(st.resources, `"*"`) && slices.ContainsFunc(st.actions, func(a string) bool {
				return a != "dynamodb:ListStreams" && !slices.Contains(xrayActions, a)
			}) {
				t.Errorf("role %s: %v on every resource", role, st.actions)
			}
		}
	}

	// actions returns every action a role may take on resources matching
	// the predicate.
	actions := func(role string, on func(resource string) bool) []string {
		var out []string
		for _, st := range stmts[role] {
			if st.effect != "Allow" {
				continue
			}
			if slices.ContainsFunc(st.resources, on) {
				out = append(out, st.actions...)
			}
		}
		sort.Strings(out)
		return slices.Compact(out)
	}
	isTable := func(r string) bool { return r == tableArn }
	isIndex := func(r string) bool {
		return strings.Contains(r, logicalID(s, s.stack.Table)) && strings.Contains(r, "/index/"+awsschema.PendingIndexName)
	}
	isStream := func(r string) bool { return r == streamArn || r == `"*"` }
	isObjects := func(r string) bool {
		return strings.Contains(r, logicalID(s, s.stack.Bucket)) && strings.Contains(r, "/"+awsschema.BlobPrefix("*")+"*")
	}
	isBucket := func(r string) bool { return r == bucketArn }
	anyDynamo := func(r string) bool { return strings.Contains(r, logicalID(s, s.stack.Table)) || r == `"*"` }

	dataActions := slices.Sorted(slices.Values(tableDataActions))
	type want struct {
		table, index, objects, bucket []string
		stream                        bool
	}
	for _, c := range []struct {
		name string
		fn   string
		want want
	}{
		{"api", logicalID(s, s.stack.API), want{dataActions, nil, []string{"s3:GetObject"}, []string{"s3:ListBucket"}, false}},
		{"workflow", logicalID(s, s.stack.Workflow), want{dataActions, nil, []string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}, []string{"s3:ListBucket"}, true}},
		{"sweeper", logicalID(s, s.stack.Sweeper), want{dataActions, []string{"dynamodb:Query"}, []string{"s3:DeleteObject", "s3:GetObject", "s3:PutObject"}, []string{"s3:ListBucket"}, false}},
	} {
		role := roleOf(t, s, c.fn)
		if got := actions(role, isTable); !slices.Equal(got, c.want.table) {
			t.Errorf("%s: table actions %v, want %v", c.name, got, c.want.table)
		}
		if got := actions(role, isIndex); !slices.Equal(got, c.want.index) {
			t.Errorf("%s: pending index actions %v, want %v", c.name, got, c.want.index)
		}
		if got := actions(role, isObjects); !slices.Equal(got, c.want.objects) {
			t.Errorf("%s: blob object actions %v, want %v", c.name, got, c.want.objects)
		}
		if got := actions(role, isBucket); !slices.Equal(got, c.want.bucket) {
			t.Errorf("%s: bucket actions %v, want %v", c.name, got, c.want.bucket)
		}
		var stream []string
		for _, a := range actions(role, func(r string) bool { return isStream(r) || anyDynamo(r) }) {
			if slices.Contains(streamActions, a) {
				stream = append(stream, a)
			}
		}
		if c.want.stream && !slices.Equal(stream, streamActions) {
			t.Errorf("%s: stream actions %v, want %v", c.name, stream, streamActions)
		}
		if !c.want.stream && len(stream) > 0 {
			t.Errorf("%s: has stream actions %v; only the workflow Lambda reads the stream", c.name, stream)
		}
		// Every action is accounted for: table, bucket, logs, and the
		// workflow's stream and dead-letter queue.
		for _, st := range stmts[role] {
			for _, a := range st.actions {
				svc, _, _ := strings.Cut(a, ":")
				switch {
				case svc == "logs" && (a == "logs:CreateLogStream" || a == "logs:PutLogEvents"):
				case slices.Contains(xrayActions, a) && !s.stack.Props.DisableTracing:
				case svc == "dynamodb" && (slices.Contains(tableDataActions, a) || (c.want.stream && slices.Contains(streamActions, a))):
				case a == "dynamodb:Query" && c.name == "sweeper" && !slices.ContainsFunc(st.resources, func(r string) bool { return !isIndex(r) }):
					// The sweeper queries the sparse pending index.
				case svc == "s3" && (slices.Contains(c.want.objects, a) || slices.Contains(c.want.bucket, a)):
				case svc == "sqs" && c.want.stream && slices.Contains([]string{"sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"}, a):
				case svc == "sqs" && retireQueueAction(c.name, a) && onlyRetireQueue(s, st.resources):
					// Delayed retention passes (retention_test.go).
				case a == "secretsmanager:GetSecretValue" && c.name == "api" && jsonEqual(st.resources, []string{show(ref(logicalID(s, s.stack.TokenKey)))}):
					// The token key, and only it.
				default:
					t.Errorf("%s: unexpected action %s on %v", c.name, a, st.resources)
				}
			}
		}
	}
	// No role other than the three functions' has table or bucket access.
	fnRoles := map[string]bool{}
	for _, fn := range []string{logicalID(s, s.stack.API), logicalID(s, s.stack.Workflow), logicalID(s, s.stack.Sweeper)} {
		fnRoles[roleOf(t, s, fn)] = true
	}
	for role, sts := range stmts {
		if fnRoles[role] {
			continue
		}
		for _, st := range sts {
			for _, a := range st.actions {
				if strings.HasPrefix(a, "dynamodb:") || strings.HasPrefix(a, "s3:") {
					t.Errorf("role %s (not a function's) may %s", role, a)
				}
			}
		}
	}
}

func TestAlarms(t *testing.T) {
	s := defaults(t)
	alarms := s.resources("AWS::CloudWatch::Alarm")
	type key struct{ namespace, metric, dimension string }
	got := map[key]map[string]any{}
	if len(alarms) != 7 {
		t.Errorf("%d alarms, want 7 (five on AWS metrics, two on sheetlog's: observability_test.go)", len(alarms))
	}
	for _, a := range alarms {
		p := props(a)
		if _, ok := p["MetricName"]; !ok {
			continue // metric math: the snapshot failures alarm, checked in observability_test.go
		}
		dim := ""
		for _, d := range list(p["Dimensions"]) {
			dim = show(d.(map[string]any)["Value"])
		}
		got[key{p["Namespace"].(string), p["MetricName"].(string), dim}] = p
		if _, ok := p["AlarmActions"]; ok {
			t.Errorf("alarm %v has actions without an alarm topic", p["MetricName"])
		}
	}
	fnDim := func(fn string) string { return show(ref(fn)) }
	want := map[key]float64{
		{"AWS/SQS", "ApproximateNumberOfMessagesVisible", show(getAtt(logicalID(s, s.stack.DLQ), "QueueName"))}:           0,
		{"AWS/Lambda", "Errors", fnDim(logicalID(s, s.stack.API))}:                                                        0,
		{"AWS/Lambda", "Errors", fnDim(logicalID(s, s.stack.Workflow))}:                                                   0,
		{"AWS/Lambda", "Errors", fnDim(logicalID(s, s.stack.Sweeper))}:                                                    0,
		{"AWS/Lambda", "IteratorAge", fnDim(logicalID(s, s.stack.Workflow))}:                                              float64(DefaultIteratorAgeAlarm.Milliseconds()),
		{awsschema.MetricsNamespace(DefaultStackName), awsschema.MetricPendingOldestAge, show(awsschema.FunctionSweeper)}: (2 * DefaultSweepGrace).Seconds(),
	}
	if len(got) != len(want) {
		t.Errorf("%d alarms, want %d: %v", len(got), len(want), got)
	}
	for k, threshold := range want {
		p, ok := got[k]
		if !ok {
			t.Errorf("no alarm on %v", k)
			continue
		}
		if p["Threshold"] != threshold || p["ComparisonOperator"] != "GreaterThanThreshold" {
			t.Errorf("alarm %v: %v %v, want > %v", k, p["ComparisonOperator"], p["Threshold"], threshold)
		}
	}

	topic := "arn:aws:sns:eu-west-1:123456789012:ops"
	withTopic := synth(t, map[string]string{CtxAlarmTopicARN: topic})
	for id, a := range withTopic.resources("AWS::CloudWatch::Alarm") {
		if !jsonEqual(props(a)["AlarmActions"], []string{topic}) || !jsonEqual(props(a)["OKActions"], []string{topic}) {
			t.Errorf("alarm %s actions %s / %s", id, show(props(a)["AlarmActions"]), show(props(a)["OKActions"]))
		}
	}
}

func TestOutputs(t *testing.T) {
	s := defaults(t)
	outs := s.json["Outputs"].(map[string]any)
	want := map[string]any{
		OutputTableName:  ref(logicalID(s, s.stack.Table)),
		OutputBucketName: ref(logicalID(s, s.stack.Bucket)),
		OutputDLQURL:     ref(logicalID(s, s.stack.DLQ)),
	}
	for name, v := range want {
		o, ok := outs[name].(map[string]any)
		if !ok || !jsonEqual(o["Value"], v) {
			t.Errorf("output %s = %s, want %s", name, show(outs[name]), show(v))
		}
	}
	api, ok := outs[OutputAPIURL].(map[string]any)
	if !ok || !strings.Contains(show(api["Value"]), "execute-api") {
		t.Errorf("output %s = %s, want the HTTP API URL", OutputAPIURL, show(outs[OutputAPIURL]))
	}
	if _, ok := outs[OutputExecuteAPIARN]; !ok {
		t.Errorf("no %s output for IAM callers", OutputExecuteAPIARN)
	}
}

// TestCORSPreflightRoutes: with CORS origins, each ANY route has an OPTIONS
// route beside it with no authorizer (a browser's preflight carries no
// credentials, and an OPTIONS request matching the authorized ANY route
// would be refused), to the same integration; without origins there is
// none, and the ANY routes keep their authorizer either way.
func TestCORSPreflightRoutes(t *testing.T) {
	for name, c := range map[string]struct {
		ctx  map[string]string
		auth string
	}{
		"iam":       {map[string]string{CtxCORSOrigins: "https://app.example.com"}, "AWS_IAM"},
		"jwt":       {map[string]string{CtxCORSOrigins: "https://app.example.com", CtxJWTIssuer: "https://issuer.example.com/", CtxJWTAudience: "a"}, "JWT"},
		"anonymous": {map[string]string{CtxCORSOrigins: "*", CtxAllowAnonymous: "true"}, "NONE"},
		"no cors":   {nil, "AWS_IAM"},
	} {
		t.Run(name, func(t *testing.T) {
			s := synth(t, c.ctx)
			s.only(t, "AWS::ApiGatewayV2::Integration")
			got := map[string]string{}
			targets := map[string]bool{}
			for _, r := range s.resources("AWS::ApiGatewayV2::Route") {
				p := props(r)
				targets[show(p["Target"])] = true
				if isWebPageRoute(r) {
					continue // TestWebPageRoutes
				}
				got[p["RouteKey"].(string)] = p["AuthorizationType"].(string)
				if _, ok := p["AuthorizerId"]; ok && p["AuthorizationType"] == "NONE" {
					t.Errorf("route %v has no authorization but an authorizer", p["RouteKey"])
				}
			}
			want := map[string]string{}
			for _, path := range apiRoutePaths {
				want["ANY "+path] = c.auth
				if c.ctx[CtxCORSOrigins] != "" {
					want["OPTIONS "+path] = "NONE"
				}
			}
			if !jsonEqual(got, want) {
				t.Errorf("routes %v, want %v", got, want)
			}
			if len(targets) != 1 {
				t.Errorf("routes go to %d integrations, want the API function's only: %v", len(targets), targets)
			}
			// The bucket lets browsers GET presigned blob URLs, and only
			// that, when browsers may call the API at all.
			bucketCORS := props(s.resources("AWS::S3::Bucket")[logicalID(s, s.stack.Bucket)])["CorsConfiguration"]
			if c.ctx[CtxCORSOrigins] == "" {
				if bucketCORS != nil {
					t.Errorf("bucket CORS %s without CORS origins", show(bucketCORS))
				}
			} else if want := map[string]any{"CorsRules": []any{map[string]any{"Id": "presigned-blob-get",
				"AllowedMethods": []any{"GET"}, "AllowedOrigins": []any{"*"}, "MaxAge": awsschema.CORSMaxAgeSeconds}}}; !jsonEqual(bucketCORS, want) {
				t.Errorf("bucket CORS %s, want %s", show(bucketCORS), show(want))
			}
			_, api := s.only(t, "AWS::ApiGatewayV2::Api")
			cors, _ := props(api)["CorsConfiguration"].(map[string]any)
			if c.ctx[CtxCORSOrigins] == "" {
				return
			}
			wantCORS := map[string]any{
				"AllowOrigins": strings.Split(c.ctx[CtxCORSOrigins], ","), "AllowMethods": awsschema.CORSAllowMethods,
				"AllowHeaders": awsschema.CORSAllowHeaders, "MaxAge": awsschema.CORSMaxAgeSeconds,
			}
			if !jsonEqual(cors, wantCORS) {
				t.Errorf("CorsConfiguration %s, want awsschema's %s", show(cors), show(wantCORS))
			}
		})
	}
}

// TestTokenKey: a generated secret per stack, its ARN in the API
// function's environment, readable by the API function's role alone.
func TestTokenKey(t *testing.T) {
	s := defaults(t)
	id, secret := s.only(t, "AWS::SecretsManager::Secret")
	gen, _ := props(secret)["GenerateSecretString"].(map[string]any)
	if gen["PasswordLength"] != float64(64) || gen["ExcludePunctuation"] != true {
		t.Errorf("secret %s: GenerateSecretString %s, want 64 characters without punctuation", id, show(gen))
	}
	if _, fixed := props(secret)["SecretString"]; fixed {
		t.Errorf("secret %s has a fixed value in the template", id)
	}
	readers := map[string]bool{}
	for role, sts := range roleStatements(t, s) {
		for _, st := range sts {
			if slices.ContainsFunc(st.actions, func(a string) bool { return strings.HasPrefix(a, "secretsmanager:") }) {
				readers[role] = true
				if !slices.Equal(st.actions, []string{"secretsmanager:GetSecretValue"}) || !jsonEqual(st.resources, []string{show(ref(id))}) {
					t.Errorf("role %s: %v on %v, want GetSecretValue on the token key only", role, st.actions, st.resources)
				}
			}
		}
	}
	if want := map[string]bool{roleOf(t, s, logicalID(s, s.stack.API)): true}; !jsonEqual(readers, want) {
		t.Errorf("roles that may read secrets %v, want the API function's only", readers)
	}
}

// TestBucketVersioning: both buckets keep overwritten and deleted objects
// for a few days (an undo window), then expire them.
func TestBucketVersioning(t *testing.T) {
	s := defaults(t)
	for id, b := range s.resources("AWS::S3::Bucket") {
		p := props(b)
		if !jsonEqual(p["VersioningConfiguration"], map[string]any{"Status": "Enabled"}) {
			t.Errorf("bucket %s: VersioningConfiguration %s", id, show(p["VersioningConfiguration"]))
		}
		rules := list(p["LifecycleConfiguration"].(map[string]any)["Rules"])
		if !slices.ContainsFunc(rules, func(r any) bool {
			m := r.(map[string]any)
			return m["Status"] == "Enabled" && m["ExpiredObjectDeleteMarker"] == true &&
				jsonEqual(m["NoncurrentVersionExpiration"], map[string]any{"NoncurrentDays": DefaultNoncurrentDays})
		}) {
			t.Errorf("bucket %s: no rule expires noncurrent versions after %d days: %s", id, DefaultNoncurrentDays, show(rules))
		}
	}
}
