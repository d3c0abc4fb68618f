// Package sheetlogstack is the CDK stack that runs sheetlog on AWS: the
// event log table and its stream, the blob bucket, the API, workflow and
// sweeper Lambdas, the HTTP API in front of the API Lambda, a dead-letter
// queue for stream records that exhaust their retries, and alarms.
//
// The table layout, the stream filter, the Lambda environment variable
// names and the function names come from pkg/awsschema, the one definition
// shared with the adapters and the end-to-end harness.
package sheetlogstack

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2authorizers"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// Output names of the stack (`cdk deploy --outputs-file` keys).
const (
	OutputAPIURL     = "ApiUrl"
	OutputTableName  = "TableName"
	OutputBucketName = "BucketName"
	OutputDLQURL     = "DlqUrl"
	// OutputExecuteAPIARN is the resource to grant execute-api:Invoke on,
	// for IAM callers of the HTTP API (IAM authorization only).
	OutputExecuteAPIARN = "ExecuteApiArn"
)

// Table data actions of every function. There is no IAM action for
// TransactWriteItems: each item of a transaction is authorized as its
// PutItem or UpdateItem (the store's transactions use nothing else; a
// ConditionCheck would need dynamodb:ConditionCheckItem). No Scan, no
// deletes, no batch operations, no stream actions: the CDK's read grants
// would add GetRecords and GetShardIterator (stream reads) to every
// function.
var tableDataActions = []string{
	"dynamodb:GetItem",
	"dynamodb:PutItem",
	"dynamodb:UpdateItem",
	"dynamodb:Query",
}

// Stack is the deployed application.
type Stack struct {
	awscdk.Stack
	// Props are the props the stack was built with, defaults filled in.
	Props  Props
	Table  awsdynamodb.Table
	Bucket awss3.Bucket
	DLQ    awssqs.Queue
	// RetireQueue holds delayed retention passes (nil: retention off).
	RetireQueue awssqs.Queue
	API         awslambda.Function
	Workflow    awslambda.Function
	Sweeper     awslambda.Function
	// HTTPAPI is nil when the endpoint is a function URL.
	HTTPAPI awsapigatewayv2.HttpApi
	Alarms  []awscloudwatch.Alarm
	// Dashboard graphs the functions' metrics (observability.go).
	Dashboard awscloudwatch.Dashboard
	// TokenKey is the secret whose value seals the API's blob listing
	// continuation tokens.
	TokenKey awssecretsmanager.Secret
	// AccessLogs is the blob bucket's server access log bucket (nil when
	// disabled).
	AccessLogs awss3.Bucket

	logGroups []awslogs.LogGroup
	// preflight are the OPTIONS routes of CORS preflight requests.
	preflight []awsapigatewayv2.HttpRoute
}

// New builds the stack. It fails before creating anything when a prop is
// invalid or a Lambda zip is missing.
func New(scope constructs.Construct, id string, props Props) (*Stack, error) {
	p, err := props.withDefaults()
	if err != nil {
		return nil, err
	}
	zips := map[string]string{}
	for _, name := range []string{awsschema.FunctionAPI, awsschema.FunctionWorkflow, awsschema.FunctionSweeper} {
		zip := filepath.Join(p.AssetDir, name+".zip")
		if fi, err := os.Stat(zip); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("lambda zip %s is missing: run `make lambdas` first (or point the assetDir context at the zips)", zip)
		}
		zips[name] = zip
	}
	table, err := newTable(p)
	if err != nil {
		return nil, err
	}

	if p.Description == nil {
		p.Description = jsii.String("sheetlog: event-sourced spreadsheet backend (DynamoDB + Streams, S3, Lambda, API Gateway)")
	}
	s := &Stack{Stack: awscdk.NewStack(scope, jsii.String(id), &p.StackProps), Props: p}
	awscdk.Tags_Of(s.Stack).Add(jsii.String("project"), jsii.String("sheetlog"), nil)

	s.Table = awsdynamodb.NewTable(s.Stack, jsii.String("EventLog"), table.props)
	for _, gsi := range table.indexes {
		s.Table.AddGlobalSecondaryIndex(gsi)
	}
	s.Bucket = s.newBucket()
	s.DLQ = awssqs.NewQueue(s.Stack, jsii.String("StreamDLQ"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})

	s.TokenKey = s.newTokenKey()

	grace := p.SweepGrace.String()
	apiEnv := map[string]string{
		awsschema.EnvTable:            *s.Table.TableName(),
		awsschema.EnvBucket:           *s.Bucket.BucketName(),
		awsschema.EnvSnapshotInterval: strconv.Itoa(p.SnapshotInterval),
		awsschema.EnvCORSOrigins:      strings.Join(p.CORSOrigins, ","),
		awsschema.EnvLogLevel:         p.LogLevel,
		awsschema.EnvTokenKeySecret:   *s.TokenKey.SecretArn(),
	}
	maps.Copy(apiEnv, apiAuthEnv(p))
	s.API = s.newFunction("Api", awsschema.FunctionAPI, zips, p.API, apiEnv)
	s.Workflow = s.newFunction("Workflow", awsschema.FunctionWorkflow, zips, p.Workflow, map[string]string{
		awsschema.EnvTable:    *s.Table.TableName(),
		awsschema.EnvBucket:   *s.Bucket.BucketName(),
		awsschema.EnvLogLevel: p.LogLevel,
	})
	// The sweeper runs stale workflows itself (the workflow Lambda's code
	// path, in process), so it needs the bucket too.
	s.Sweeper = s.newFunction("Sweeper", awsschema.FunctionSweeper, zips, p.Sweeper, map[string]string{
		awsschema.EnvTable:      *s.Table.TableName(),
		awsschema.EnvBucket:     *s.Bucket.BucketName(),
		awsschema.EnvSweepGrace: grace,
		awsschema.EnvLogLevel:   p.LogLevel,
	})
	// EventBridge invokes the sweeper asynchronously; Lambda would retry a
	// failed sweep twice, overlapping the next tick, which sweeps anyway.
	s.Sweeper.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{RetryAttempts: jsii.Number(0)})

	s.grant()
	s.retention()
	s.streamToWorkflow()
	s.schedule()
	apiURL := s.endpoint()
	s.alarms()
	s.observability()
	s.suppressNagFindings()
	s.scannerMetadata()

	out := func(name string, value *string, desc string) {
		awscdk.NewCfnOutput(s.Stack, jsii.String(name), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(desc)})
	}
	out(OutputAPIURL, apiURL, "Base URL of the sheetlog API (append v1/... or healthz)")
	out(OutputTableName, s.Table.TableName(), "DynamoDB event log table")
	out(OutputBucketName, s.Bucket.BucketName(), "S3 blob bucket")
	out(OutputDLQURL, s.DLQ.QueueUrl(), "Dead-letter queue of stream records the workflow Lambda gave up on")
	if s.HTTPAPI != nil && p.JWTIssuer == "" && !p.AllowAnonymous {
		out(OutputExecuteAPIARN, s.HTTPAPI.ArnForExecuteApi(nil, nil, nil), "Grant execute-api:Invoke on this to IAM callers")
	}
	return s, nil
}

type tableDesign struct {
	props   *awsdynamodb.TableProps
	indexes []*awsdynamodb.GlobalSecondaryIndexProps
}

// newTable translates awsschema.EventLogTable into CDK props.
func newTable(p Props) (tableDesign, error) {
	t := awsschema.EventLogTable
	var errs []string
	attr := func(k awsschema.Key) *awsdynamodb.Attribute {
		a := &awsdynamodb.Attribute{Name: jsii.String(k.Name)}
		switch k.Type {
		case awsschema.String:
			a.Type = awsdynamodb.AttributeType_STRING
		case awsschema.Number:
			a.Type = awsdynamodb.AttributeType_NUMBER
		default:
			errs = append(errs, fmt.Sprintf("key %s: unknown type %q", k.Name, k.Type))
		}
		return a
	}
	views := map[string]awsdynamodb.StreamViewType{
		"NEW_AND_OLD_IMAGES": awsdynamodb.StreamViewType_NEW_AND_OLD_IMAGES,
		"NEW_IMAGE":          awsdynamodb.StreamViewType_NEW_IMAGE,
		"OLD_IMAGE":          awsdynamodb.StreamViewType_OLD_IMAGE,
		"KEYS_ONLY":          awsdynamodb.StreamViewType_KEYS_ONLY,
	}
	view, ok := views[t.StreamView]
	if !ok {
		errs = append(errs, fmt.Sprintf("unknown stream view %q", t.StreamView))
	}
	if t.BillingMode != "PAY_PER_REQUEST" {
		// Provisioned capacity costs money at rest and needs capacity
		// props this stack does not have.
		errs = append(errs, fmt.Sprintf("billing mode %q: the stack supports PAY_PER_REQUEST only", t.BillingMode))
	}
	d := tableDesign{props: &awsdynamodb.TableProps{
		PartitionKey: attr(t.PartitionKey),
		SortKey:      attr(t.SortKey),
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		Stream:       view,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(true),
		},
		DeletionProtection: jsii.Bool(!p.Dev),
		RemovalPolicy:      removal(p),
	}}
	projections := map[string]awsdynamodb.ProjectionType{
		"KEYS_ONLY": awsdynamodb.ProjectionType_KEYS_ONLY,
		"INCLUDE":   awsdynamodb.ProjectionType_INCLUDE,
		"ALL":       awsdynamodb.ProjectionType_ALL,
	}
	for _, ix := range t.Indexes {
		proj, ok := projections[ix.Projection]
		if !ok {
			errs = append(errs, fmt.Sprintf("index %s: unknown projection %q", ix.Name, ix.Projection))
		}
		gsi := &awsdynamodb.GlobalSecondaryIndexProps{
			IndexName:      jsii.String(ix.Name),
			PartitionKey:   attr(ix.PartitionKey),
			ProjectionType: proj,
		}
		if ix.SortKey.Name != "" {
			gsi.SortKey = attr(ix.SortKey)
		}
		if len(ix.NonKeyAttributes) > 0 {
			gsi.NonKeyAttributes = jsii.Strings(ix.NonKeyAttributes...)
		}
		d.indexes = append(d.indexes, gsi)
	}
	if len(errs) > 0 {
		return d, fmt.Errorf("awsschema.EventLogTable: %s", strings.Join(errs, "; "))
	}
	return d, nil
}

func removal(p Props) awscdk.RemovalPolicy {
	if p.Dev {
		return awscdk.RemovalPolicy_DESTROY
	}
	return awscdk.RemovalPolicy_RETAIN
}

func (s *Stack) newBucket() awss3.Bucket {
	p := s.Props
	abortUploads := &awss3.LifecycleRule{
		Id:                                  jsii.String("abort-incomplete-multipart-uploads"),
		Enabled:                             jsii.Bool(true),
		AbortIncompleteMultipartUploadAfter: awscdk.Duration_Days(jsii.Number(1)),
	}
	// Versioning keeps an overwritten or deleted object for
	// NoncurrentVersionDays: an undo window behind snapshot retention and
	// mistakes, at the price of that many days of the old bytes. Delete
	// markers left with no version behind them are removed.
	expireOldVersions := &awss3.LifecycleRule{
		Id:                          jsii.String("expire-noncurrent-versions"),
		Enabled:                     jsii.Bool(true),
		NoncurrentVersionExpiration: awscdk.Duration_Days(jsii.Number(float64(p.NoncurrentVersionDays))),
		ExpiredObjectDeleteMarker:   jsii.Bool(true),
	}
	props := &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		MinimumTLSVersion: jsii.Number(1.2),
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		RemovalPolicy:     removal(p),
		Versioned:         jsii.Bool(true),
		LifecycleRules:    &[]*awss3.LifecycleRule{abortUploads, expireOldVersions},
	}
	if len(p.CORSOrigins) > 0 {
		props.Cors = blobURLCORS()
	}
	if !p.DisableBucketAccessLogs {
		logs := awss3.NewBucket(s.Stack, jsii.String("AccessLogs"), &awss3.BucketProps{
			BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
			Encryption:        awss3.BucketEncryption_S3_MANAGED,
			EnforceSSL:        jsii.Bool(true),
			MinimumTLSVersion: jsii.Number(1.2),
			ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
			RemovalPolicy:     removal(p),
			Versioned:         jsii.Bool(true),
			LifecycleRules: &[]*awss3.LifecycleRule{abortUploads, expireOldVersions, {
				Id:         jsii.String("expire-access-logs"),
				Enabled:    jsii.Bool(true),
				Expiration: awscdk.Duration_Days(jsii.Number(float64(p.LogRetentionDays))),
			}},
		})
		s.AccessLogs = logs
		props.ServerAccessLogsBucket = logs
		props.ServerAccessLogsPrefix = jsii.String("blobs/")
	}
	return awss3.NewBucket(s.Stack, jsii.String("Blobs"), props)
}

// newTokenKey is the HMAC key of the blob listing continuation tokens: a
// random secret generated by Secrets Manager at deployment, one per stack,
// which no template, asset or environment variable holds (the API function
// gets its ARN and reads the value once per execution environment).
// Without it the key would be derived from the bucket name, and anyone who
// knows the bucket could forge a token.
func (s *Stack) newTokenKey() awssecretsmanager.Secret {
	return awssecretsmanager.NewSecret(s.Stack, jsii.String("TokenKey"), &awssecretsmanager.SecretProps{
		Description: jsii.String("sheetlog: HMAC key of blob listing continuation tokens (read by the API function)"),
		GenerateSecretString: &awssecretsmanager.SecretStringGenerator{
			PasswordLength:     jsii.Number(64),
			ExcludePunctuation: jsii.Bool(true),
		},
		// Tokens are short-lived cursors: nothing is lost with the key.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
}

// blobURLCORS lets browsers read the presigned blob URLs the API redirects
// large blob reads to (docs/api.md): GET only, nothing else of the bucket.
// Any origin, because the browser sends "Origin: null" to the bucket: a
// redirect from the API's origin to another one, of a request from a
// third, taints the request's origin (Fetch standard, HTTP-redirect fetch).
// Only holders of a presigned URL (valid minutes) get anything; no cookies
// or credentials are involved.
func blobURLCORS() *[]*awss3.CorsRule {
	return &[]*awss3.CorsRule{{
		Id:             jsii.String("presigned-blob-get"),
		AllowedMethods: &[]awss3.HttpMethods{awss3.HttpMethods_GET},
		AllowedOrigins: jsii.Strings("*"),
		MaxAge:         jsii.Number(awsschema.CORSMaxAgeSeconds),
	}}
}

func (s *Stack) logGroup(id string) awslogs.LogGroup {
	lg := awslogs.NewLogGroup(s.Stack, jsii.String(id), &awslogs.LogGroupProps{
		Retention:     retention(s.Props.LogRetentionDays),
		RemovalPolicy: removal(s.Props),
	})
	s.logGroups = append(s.logGroups, lg)
	return lg
}

// newFunction creates one Lambda from build/<name>.zip, with its own role
// and log group. The role has no managed policy: the basic execution
// policy would allow writing to every log group of the account, so the
// role gets write access to this function's log group only.
func (s *Stack) newFunction(id, name string, zips map[string]string, f FunctionSettings, env map[string]string) awslambda.Function {
	p := s.Props
	role := awsiam.NewRole(s.Stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Execution role of the sheetlog " + name),
	})
	logs := s.logGroup(id + "Logs")
	logs.GrantWrite(role)

	arch := awslambda.Architecture_ARM_64()
	if p.Architecture == "x86_64" {
		arch = awslambda.Architecture_X86_64()
	}
	envVars := map[string]*string{}
	for k, v := range env {
		envVars[k] = jsii.String(v)
	}
	props := &awslambda.FunctionProps{
		Description:   jsii.String("sheetlog " + name),
		Runtime:       awslambda.Runtime_PROVIDED_AL2023(),
		Architecture:  arch,
		Handler:       jsii.String("bootstrap"),
		Code:          awslambda.Code_FromAsset(jsii.String(zips[name]), nil),
		MemorySize:    jsii.Number(float64(f.MemoryMiB)),
		Timeout:       awscdk.Duration_Seconds(jsii.Number(f.Timeout.Seconds())),
		Environment:   &envVars,
		Role:          role,
		LogGroup:      logs,
		LoggingFormat: awslambda.LoggingFormat_JSON,
	}
	if f.ReservedConcurrency > 0 {
		props.ReservedConcurrentExecutions = jsii.Number(float64(f.ReservedConcurrency))
	}
	fn := awslambda.NewFunction(s.Stack, jsii.String(id), props)
	// The CDK makes the function depend on its role and on the role's
	// policy. The role is a dependency already, through Fn::GetAtt (which
	// cfn-lint reports as W3005); the policy is not, and must stay: a
	// function created before its permissions exist fails its first
	// invocations. logs.GrantWrite above created the policy.
	fn.Node().DefaultChild().(awslambda.CfnFunction).AddOverride(jsii.String("DependsOn"),
		[]*string{s.Stack.GetLogicalId(rolePolicy(role))})
	return fn
}

// rolePolicy is the CloudFormation policy that AddToRolePolicy and the
// CDK's grants fill for role.
func rolePolicy(role awsiam.IRole) awsiam.CfnPolicy {
	return role.Node().FindChild(jsii.String("DefaultPolicy")).Node().DefaultChild().(awsiam.CfnPolicy)
}

// grant gives each function exactly the table and bucket actions it needs.
// The statements are written out because the CDK's grant helpers are
// broader here: table read grants include stream reads, and bucket read
// grants allow s3:GetObject*, s3:GetBucket* and s3:List*.
func (s *Stack) grant() {
	tableArn := s.Table.TableArn()
	pendingIndexArn := jsii.String(*tableArn + "/index/" + awsschema.PendingIndexName)
	// Every blob key is awsschema.BlobPrefix(sheet) + name; BlobPrefix("*")
	// is the pattern of every sheet's prefix.
	blobs := s.Bucket.ArnForObjects(jsii.String(awsschema.BlobPrefix("*") + "*"))

	allow := func(fn awslambda.Function, actions []string, resources ...*string) {
		fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(actions...),
			Resources: &resources,
		}))
	}
	// The API reads the log and appends entries; it serves blobs and
	// lists them, and never writes one.
	allow(s.API, tableDataActions, tableArn)
	allow(s.API, []string{"s3:GetObject"}, blobs)
	allow(s.API, []string{"s3:ListBucket"}, s.Bucket.BucketArn())
	// The continuation token key, read once per execution environment.
	// Only the API hands tokens out; the other functions list blobs for
	// themselves and seal with a key of their own.
	allow(s.API, []string{"secretsmanager:GetSecretValue"}, s.TokenKey.SecretArn())
	// The workflow reads the log, writes the snapshot's blobs (CopyObject
	// is a GetObject of the source and a PutObject of the copy) and
	// completes with a conditional write. Its stream actions come with the
	// event source mapping.
	allow(s.Workflow, tableDataActions, tableArn)
	allow(s.Workflow, []string{"s3:GetObject", "s3:PutObject"}, blobs)
	allow(s.Workflow, []string{"s3:ListBucket"}, s.Bucket.BucketArn())
	// The sweeper queries the sparse pending index, shard by shard (it
	// holds only the entries with pending set, of every workflow, so
	// unknown workflows are reported too), then runs workflows. The index
	// is read-only: item writes are granted on the table alone, Query on
	// the index, and nothing may Scan.
	allow(s.Sweeper, tableDataActions, tableArn)
	allow(s.Sweeper, []string{"dynamodb:Query"}, pendingIndexArn)
	allow(s.Sweeper, []string{"s3:GetObject", "s3:PutObject"}, blobs)
	allow(s.Sweeper, []string{"s3:ListBucket"}, s.Bucket.BucketArn())
}

// StreamFilter is the event source mapping filter, built with the CDK's
// filter helpers from awsschema's attribute name. The tests check that it
// synthesizes to exactly awsschema.StreamFilterPattern. The rule sits under
// the attribute's type ("S") because "exists" matches leaf values only,
// and a stream image holds {"pending":{"S":"snapshot"}}.
func StreamFilter() *map[string]any {
	return awslambda.FilterCriteria_Filter(&map[string]any{
		"dynamodb": map[string]any{
			"NewImage": map[string]any{
				awsschema.AttrPending: map[string]any{
					string(awsschema.String): awslambda.FilterRule_Exists(),
				},
			},
		},
	})
}

func (s *Stack) streamToWorkflow() {
	st := s.Props.Stream
	props := &awslambdaeventsources.DynamoEventSourceProps{
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(float64(st.BatchSize)),
		Filters:                 &[]*map[string]any{StreamFilter()},
		ReportBatchItemFailures: jsii.Bool(true),
		RetryAttempts:           jsii.Number(float64(st.RetryAttempts)),
		MaxRecordAge:            awscdk.Duration_Seconds(jsii.Number(st.MaxRecordAge.Seconds())),
		ParallelizationFactor:   jsii.Number(float64(st.ParallelizationFactor)),
		OnFailure:               awslambdaeventsources.NewSqsDlq(s.DLQ),
	}
	if !st.DisableBisect {
		props.BisectBatchOnError = jsii.Bool(true)
	}
	source := awslambdaeventsources.NewDynamoEventSource(s.Table, props)
	s.Workflow.AddEventSource(source)
	// The mapping starts polling as soon as it exists, with the role's
	// permissions as IAM has them then: without this dependency
	// CloudFormation may create it before the policy that lets the role
	// read the stream and send to the dead-letter queue, and the first
	// deployment fails or the first batches are dropped while IAM
	// propagates.
	s.ESM().Node().AddDependency(s.Workflow.Role().Node().FindChild(jsii.String("DefaultPolicy")))
}

// ESM is the event source mapping from the table's stream to the workflow
// function.
func (s *Stack) ESM() awslambda.CfnEventSourceMapping {
	for _, c := range *s.Workflow.Node().Children() {
		if esm, ok := c.Node().DefaultChild().(awslambda.CfnEventSourceMapping); ok {
			return esm
		}
	}
	panic("sheetlogstack: the workflow function has no event source mapping")
}

func (s *Stack) schedule() {
	rule := awsevents.NewRule(s.Stack, jsii.String("SweepSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Runs the sheetlog sweeper, which re-runs workflows pending longer than " + s.Props.SweepGrace.String()),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(s.Props.SweepRate.Minutes()))),
	})
	// No retries: the next tick sweeps again.
	rule.AddTarget(awseventstargets.NewLambdaFunction(s.Sweeper, &awseventstargets.LambdaFunctionProps{
		RetryAttempts: jsii.Number(0),
	}))
}

// endpoint puts the API Lambda behind its front door and returns the base
// URL (ending in "/").
func (s *Stack) endpoint() *string {
	p := s.Props
	if p.Endpoint == EndpointFunctionURL {
		auth := awslambda.FunctionUrlAuthType_AWS_IAM
		if p.AllowAnonymous {
			auth = awslambda.FunctionUrlAuthType_NONE
		}
		opts := &awslambda.FunctionUrlOptions{AuthType: auth}
		if len(p.CORSOrigins) > 0 {
			opts.Cors = &awslambda.FunctionUrlCorsOptions{
				AllowedOrigins: jsii.Strings(p.CORSOrigins...),
				// A function URL's CORS rejects OPTIONS as an allowed
				// method: it answers preflight requests itself.
				AllowedMethods: &[]awslambda.HttpMethod{awslambda.HttpMethod_GET, awslambda.HttpMethod_POST, awslambda.HttpMethod_HEAD},
				AllowedHeaders: jsii.Strings(awsschema.CORSAllowHeaders...),
				MaxAge:         awscdk.Duration_Seconds(jsii.Number(awsschema.CORSMaxAgeSeconds)),
			}
		}
		return s.API.AddFunctionUrl(opts).Url()
	}

	var authorizer awsapigatewayv2.IHttpRouteAuthorizer
	switch {
	case p.AllowAnonymous:
		authorizer = awsapigatewayv2.NewHttpNoneAuthorizer()
	case p.JWTIssuer != "":
		authorizer = awsapigatewayv2authorizers.NewHttpJwtAuthorizer(jsii.String("Jwt"), jsii.String(p.JWTIssuer),
			&awsapigatewayv2authorizers.HttpJwtAuthorizerProps{JwtAudience: jsii.Strings(p.JWTAudience...)})
	default:
		authorizer = awsapigatewayv2authorizers.NewHttpIamAuthorizer()
	}
	props := &awsapigatewayv2.HttpApiProps{
		ApiName:            jsii.String(*s.StackName() + "-api"),
		Description:        jsii.String("sheetlog thin-client API"),
		CreateDefaultStage: jsii.Bool(false),
		DefaultAuthorizer:  authorizer,
	}
	if len(p.CORSOrigins) > 0 {
		// API Gateway answers preflight requests itself, before any
		// authorizer, and overrides the CORS headers of the integration.
		methods := make([]awsapigatewayv2.CorsHttpMethod, len(awsschema.CORSAllowMethods))
		for i, m := range awsschema.CORSAllowMethods {
			methods[i] = awsapigatewayv2.CorsHttpMethod(m)
		}
		props.CorsPreflight = &awsapigatewayv2.CorsPreflightOptions{
			AllowOrigins: jsii.Strings(p.CORSOrigins...),
			AllowMethods: &methods,
			AllowHeaders: jsii.Strings(awsschema.CORSAllowHeaders...),
			MaxAge:       awscdk.Duration_Seconds(jsii.Number(awsschema.CORSMaxAgeSeconds)),
		}
	}
	api := awsapigatewayv2.NewHttpApi(s.Stack, jsii.String("HttpApi"), props)
	integration := awsapigatewayv2integrations.NewHttpLambdaIntegration(jsii.String("ApiLambda"), s.API, nil)
	// ANY, so that a wrong method reaches the handler and gets the
	// contract's 405 rather than API Gateway's 404.
	for _, path := range apiRoutePaths {
		api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(path),
			Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_ANY},
			Integration: integration,
		})
	}
	if len(p.CORSOrigins) > 0 {
		s.preflight = preflightRoutes(api, integration)
	}
	s.webPageRoutes(api, integration)
	stage := awsapigatewayv2.NewHttpStage(s.Stack, jsii.String("DefaultStage"), &awsapigatewayv2.HttpStageProps{
		HttpApi:    api,
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(float64(p.ThrottleRate)),
			BurstLimit: jsii.Number(float64(p.ThrottleBurst)),
		},
	})
	accessLogs := s.logGroup("ApiAccessLogs")
	cfnStage := stage.Node().DefaultChild().(awsapigatewayv2.CfnStage)
	cfnStage.SetAccessLogSettings(&awsapigatewayv2.CfnStage_AccessLogSettingsProperty{
		DestinationArn: accessLogs.LogGroupArn(),
		Format:         jsii.String(accessLogFormat),
	})
	s.HTTPAPI = api
	return stage.Url()
}

// apiRoutePaths are the routes of the API function, each for ANY method.
var apiRoutePaths = []string{"/v1/{proxy+}", "/healthz"}

// preflightRoutes adds an OPTIONS route without authorization beside each
// ANY route. A browser never sends credentials on a CORS preflight, and
// an OPTIONS request that matches an ANY route goes through that route's
// authorizer, which refuses it; a route for the method itself is more
// specific than ANY, so the preflight matches it instead. With CORS
// configured API Gateway answers the preflight itself from the API's CORS
// configuration; the integration only receives OPTIONS requests that are
// not preflights (no Origin or no Access-Control-Request-Method), which
// the API function answers with its Allow header and nothing else.
func preflightRoutes(api awsapigatewayv2.HttpApi, integration awsapigatewayv2.HttpRouteIntegration) []awsapigatewayv2.HttpRoute {
	var routes []awsapigatewayv2.HttpRoute
	for _, path := range apiRoutePaths {
		routes = append(routes, *api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(path),
			Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_OPTIONS},
			Integration: integration,
			Authorizer:  awsapigatewayv2.NewHttpNoneAuthorizer(),
		})...)
	}
	return routes
}

// accessLogFormat is one JSON object per request. caller is the IAM
// caller's ARN, sub the JWT subject; each is "-" under the other
// authorizer.
var accessLogFormat = func() string {
	fields := [][2]string{
		{"requestId", "$context.requestId"},
		{"time", "$context.requestTime"},
		{"ip", "$context.identity.sourceIp"},
		{"method", "$context.httpMethod"},
		{"path", "$context.path"},
		{"routeKey", "$context.routeKey"},
		{"status", "$context.status"},
		{"protocol", "$context.protocol"},
		{"responseLength", "$context.responseLength"},
		{"latencyMs", "$context.responseLatency"},
		{"integrationLatencyMs", "$context.integrationLatency"},
		{"integrationError", "$context.integrationErrorMessage"},
		{"authorizerError", "$context.authorizer.error"},
		{"caller", "$context.identity.userArn"},
		{"sub", "$context.authorizer.claims.sub"},
	}
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = strconv.Quote(f[0]) + ":" + strconv.Quote(f[1])
	}
	return "{" + strings.Join(parts, ",") + "}"
}()

func (s *Stack) alarms() {
	p := s.Props
	five := awscdk.Duration_Minutes(jsii.Number(5))
	add := func(id, desc string, metric awscloudwatch.Metric, threshold float64) {
		s.addAlarm(metric.CreateAlarm(s.Stack, jsii.String(id), &awscloudwatch.CreateAlarmOptions{
			AlarmDescription:   jsii.String(desc),
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
			TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
		}))
	}
	add("DlqNotEmptyAlarm", "Stream records exhausted their retries and are in the dead-letter queue (the sweeper re-runs their workflows; find out why they failed)",
		s.DLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum")}), 0)
	for _, f := range []struct {
		id string
		fn awslambda.Function
	}{{"ApiErrorsAlarm", s.API}, {"WorkflowErrorsAlarm", s.Workflow}, {"SweeperErrorsAlarm", s.Sweeper}} {
		add(f.id, "The function reported errors (crashes, timeouts or handler errors)",
			f.fn.MetricErrors(&awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Sum")}), 0)
	}
	add("StreamIteratorAgeAlarm", fmt.Sprintf("The workflow Lambda is more than %v behind the event log stream", p.IteratorAgeAlarm),
		s.Workflow.Metric(jsii.String("IteratorAge"), &awscloudwatch.MetricOptions{Period: five, Statistic: jsii.String("Maximum")}),
		float64(p.IteratorAgeAlarm/time.Millisecond))
}

var retentionEnum = []awslogs.RetentionDays{
	awslogs.RetentionDays_ONE_DAY, awslogs.RetentionDays_THREE_DAYS, awslogs.RetentionDays_FIVE_DAYS,
	awslogs.RetentionDays_ONE_WEEK, awslogs.RetentionDays_TWO_WEEKS, awslogs.RetentionDays_ONE_MONTH,
	awslogs.RetentionDays_TWO_MONTHS, awslogs.RetentionDays_THREE_MONTHS, awslogs.RetentionDays_FOUR_MONTHS,
	awslogs.RetentionDays_FIVE_MONTHS, awslogs.RetentionDays_SIX_MONTHS, awslogs.RetentionDays_ONE_YEAR,
	awslogs.RetentionDays_THIRTEEN_MONTHS, awslogs.RetentionDays_EIGHTEEN_MONTHS, awslogs.RetentionDays_TWO_YEARS,
	awslogs.RetentionDays_THREE_YEARS, awslogs.RetentionDays_FIVE_YEARS, awslogs.RetentionDays_SIX_YEARS,
	awslogs.RetentionDays_SEVEN_YEARS, awslogs.RetentionDays_EIGHT_YEARS, awslogs.RetentionDays_NINE_YEARS,
	awslogs.RetentionDays_TEN_YEARS,
}

// retention maps a validated number of days to the CDK enum (both lists
// are in the same order).
func retention(days int) awslogs.RetentionDays {
	return retentionEnum[slices.Index(retentionDays, days)]
}

// apiAuthEnv tells the API function how its front door authenticates
// callers: behind the JWT authorizer it applies the per-sheet scope rule
// to the claims API Gateway verified; behind IAM (or nothing) the rule is
// off and IAM policies on the route ARNs decide.
func apiAuthEnv(p Props) map[string]string {
	switch {
	case p.JWTIssuer != "":
		return awsschema.APIAuthEnv(awsschema.APIAuthJWT, p.JWTTenantClaim, p.JWTScopePrefix)
	case p.AllowAnonymous:
		return awsschema.APIAuthEnv(awsschema.APIAuthNone, "", "")
	}
	return awsschema.APIAuthEnv(awsschema.APIAuthIAM, "", "")
}
