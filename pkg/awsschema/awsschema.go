// Package awsschema is the one definition of the AWS resources' data
// layout: the DynamoDB table of event logs (keys, attributes, indexes,
// stream), the stream filter that wakes the workflow Lambda, and the S3 key
// layout of blobs. The DynamoDB and S3 adapters, the CDK stack (infra/cdk)
// and the end-to-end harness all read it from here, so the table a test
// creates cannot drift from the table the stack deploys.
//
// It depends on nothing but the standard library, so the CDK module can
// import it without pulling in the AWS SDK.
package awsschema

import "encoding/json"

// Attribute names of the event log table.
const (
	// AttrSheet is the partition key: the sheet id (S).
	AttrSheet = "sheet"
	// AttrSeq is the sort key: the entry's sequence id (N).
	AttrSeq = "seq"

	// Metadata attributes are top-level strings (S) so that stream
	// filters can match on their existence.
	AttrPending  = "pending"
	AttrSnapshot = "snapshot"
	AttrHistory  = "history"
	// AttrPendingSince is the time pending was set, in Unix milliseconds
	// (N); the sort key of the pending index.
	AttrPendingSince = "pendingSince"
	// AttrPendingShard is the partition key of the pending index (N, 0 to
	// PendingShards-1): present exactly when pending is, and
	// PendingShard(sheet, seq).
	AttrPendingShard = "pendingShard"
)

// AttributeType is a DynamoDB scalar key type.
type AttributeType string

const (
	String AttributeType = "S"
	Number AttributeType = "N"
)

// Key is one key attribute.
type Key struct {
	Name string
	Type AttributeType
}

// Index is a global secondary index.
type Index struct {
	Name         string
	PartitionKey Key
	SortKey      Key
	// Projection is "KEYS_ONLY", "INCLUDE" or "ALL".
	Projection string
	// NonKeyAttributes are projected when Projection is "INCLUDE".
	NonKeyAttributes []string
}

// Table describes the event log table.
type Table struct {
	PartitionKey Key
	SortKey      Key
	Indexes      []Index
	// StreamView is the DynamoDB stream view type.
	StreamView string
	// BillingMode is "PAY_PER_REQUEST": the table costs nothing at rest
	// but storage.
	BillingMode string
}

// PendingIndexName is the sparse index of entries whose pending attribute
// is set: only those items carry its partition key, so the index holds
// exactly the outstanding workflows of every sheet and the sweeper finds
// them without a table scan.
//
// Its partition key is a shard number, not the workflow name: with one
// key value for every pending entry, all index writes of every sheet land
// on one partition, and a throttled index throttles the table's writes.
// The sweeper Queries each of the PendingShards partitions, oldest first.
const PendingIndexName = "pending-by-shard"

// PendingShards is the number of partition key values of the pending
// index. Fixed: changing it strands entries under shards nobody reads.
const PendingShards = 16

// PendingShard is the pending index partition of the entry seq of sheet:
// FNV-1a of both, so that one busy sheet spreads over every shard too.
func PendingShard(sheet string, seq uint64) int {
	const offset, prime = 2166136261, 16777619
	h := uint32(offset)
	for i := 0; i < len(sheet); i++ {
		h = (h ^ uint32(sheet[i])) * prime
	}
	h = (h ^ '/') * prime
	for i := 0; i < 8; i++ {
		h = (h ^ uint32(byte(seq>>(8*i)))) * prime
	}
	return int(h % PendingShards)
}

// EventLogTable is the event log table shared by all sheets.
var EventLogTable = Table{
	PartitionKey: Key{AttrSheet, String},
	SortKey:      Key{AttrSeq, Number},
	Indexes: []Index{{
		Name:         PendingIndexName,
		PartitionKey: Key{AttrPendingShard, Number},
		SortKey:      Key{AttrPendingSince, Number},
		// The table's keys (sheet, seq) come with every projection; the
		// workflow name is what the sweeper needs besides.
		Projection:       "INCLUDE",
		NonKeyAttributes: []string{AttrPending},
	}},
	// Nothing reads a record's old image (the workflow Lambda and its
	// filter look at NewImage only), and NEW_IMAGE halves what a record
	// of an updated item carries.
	StreamView:  "NEW_IMAGE",
	BillingMode: "PAY_PER_REQUEST",
}

// StreamFilterPattern is the event source mapping filter on the table's
// stream: only records whose new image has a pending attribute reach the
// workflow Lambda. Existence of a string attribute is the robust match
// (numeric and boolean matches have known pitfalls).
//
// The pattern names the attribute's type ("S"): a filter matches the
// record's DynamoDB-typed JSON, and "exists" only matches leaf values, so
// {"pending":[{"exists":true}]} would test the object {"S":"snapshot"}
// and match nothing (every pending entry would wait for the sweeper).
//
// The CDK stack builds the same pattern with the CDK filter helpers and
// its tests assert that the synthesized pattern equals this JSON; the
// local event source mapping of the end-to-end harness evaluates this JSON.
const StreamFilterPattern = `{"dynamodb":{"NewImage":{"pending":{"S":[{"exists":true}]}}}}`

// StreamFilter returns StreamFilterPattern decoded.
func StreamFilter() map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(StreamFilterPattern), &m); err != nil {
		panic("awsschema: StreamFilterPattern is not JSON: " + err.Error())
	}
	return m
}

// BlobPrefix is the S3 key prefix of one sheet's blobs: every key of the
// sheet starts with it, and no other sheet's key does (sheet ids cannot
// contain "/").
func BlobPrefix(sheet string) string { return "sheets/" + sheet + "/" }

// Environment variables of the Lambda functions, set by the CDK stack and
// by the end-to-end harness.
const (
	// EnvTable is the event log table name.
	EnvTable = "SHEETLOG_TABLE"
	// EnvBucket is the blob bucket name.
	EnvBucket = "SHEETLOG_BUCKET"
	// EnvSnapshotInterval is the number of entries between snapshots.
	EnvSnapshotInterval = "SHEETLOG_SNAPSHOT_INTERVAL"
	// EnvCORSOrigins is a comma-separated list of allowed origins.
	EnvCORSOrigins = "SHEETLOG_CORS_ORIGINS"
	// EnvSweepGrace is how long an entry stays pending before the sweeper
	// runs its workflow (a Go duration such as "2m").
	EnvSweepGrace = "SHEETLOG_SWEEP_GRACE"
	// EnvLogLevel is the slog level: debug, info, warn or error.
	EnvLogLevel = "SHEETLOG_LOG_LEVEL"
	// EnvTokenKeySecret names the Secrets Manager secret (ARN or name)
	// whose value is the HMAC key of blob listing continuation tokens. The
	// API function reads it once at init; every instance must seal tokens
	// with the same key, since a token issued by one is redeemed by another.
	EnvTokenKeySecret = "SHEETLOG_TOKEN_KEY_SECRET"
	// EnvAPIAuth is how the API's front door authenticates callers:
	// "jwt" (API Gateway's JWT authorizer: the API function applies the
	// per-sheet scope rule to the claims it verified), "iam" or "none"
	// (the rule is off; IAM policies, or nothing, decide). Unset means
	// "iam".
	EnvAPIAuth = "SHEETLOG_API_AUTH"
	// EnvJWTTenantClaim names the claim {tenant} in a scope's pattern
	// stands for (default "tenant").
	EnvJWTTenantClaim = "SHEETLOG_JWT_TENANT_CLAIM"
	// EnvJWTScopePrefix, when set, must begin every scope the rule reads
	// (Amazon Cognito: the resource server's identifier and a slash).
	EnvJWTScopePrefix = "SHEETLOG_JWT_SCOPE_PREFIX"
)

// CORS of the HTTP API, when origins are configured: what API Gateway
// answers a preflight request with, before any authorizer. The end-to-end
// harness's front answers preflight requests from the same values.
var (
	// CORSAllowMethods are the methods a browser may use.
	CORSAllowMethods = []string{"GET", "HEAD", "POST", "OPTIONS"}
	// CORSAllowHeaders are the request headers a browser may send:
	// bearer tokens (JWT authorization), JSON bodies, and what SigV4
	// signing adds (IAM authorization).
	CORSAllowHeaders = []string{"content-type", "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}
)

// CORSMaxAgeSeconds is how long a browser may cache a preflight answer.
const CORSMaxAgeSeconds = 3600

// Values of EnvAPIAuth.
const (
	APIAuthJWT  = "jwt"
	APIAuthIAM  = "iam"
	APIAuthNone = "none"
)

// APIAuthEnv is the API function's environment for a front door that
// authenticates with mode (an APIAuth value); tenantClaim and scopePrefix
// count under APIAuthJWT only, and are left out when empty.
func APIAuthEnv(mode, tenantClaim, scopePrefix string) map[string]string {
	env := map[string]string{EnvAPIAuth: mode}
	if mode == APIAuthJWT {
		if tenantClaim != "" {
			env[EnvJWTTenantClaim] = tenantClaim
		}
		if scopePrefix != "" {
			env[EnvJWTScopePrefix] = scopePrefix
		}
	}
	return env
}

// Function names: the directory under cmd/ and the zip under build/.
const (
	FunctionAPI      = "api-lambda"
	FunctionWorkflow = "workflow-lambda"
	FunctionSweeper  = "sweeper-lambda"
)
