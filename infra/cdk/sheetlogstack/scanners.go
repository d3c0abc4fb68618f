package sheetlogstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// ScannerSkip is one check of a template scanner (checkov) that a resource
// is exempt from, with the reason. The skips are written into the
// template's metadata, where the scanner reads them, and are listed in
// docs/deploy.md.
type ScannerSkip struct {
	ID     string
	Reason string
}

// Reasons shared by several resources.
const (
	reasonNoVPC = "No VPC: the function reaches only AWS service endpoints (DynamoDB, S3, Secrets Manager), " +
		"authorized by IAM; a VPC would add NAT gateways or endpoints at a fixed monthly cost and protect nothing private."
	reasonEnvNoSecrets = "The environment holds names and ARNs only (table, bucket, the token key's secret ARN), " +
		"no secret values; Lambda encrypts it at rest with an AWS managed key."
	reasonLogsKMS = "CloudWatch Logs encrypts every log group at rest with AWS-owned keys; the logs hold request " +
		"metadata, no cell data, and a customer managed key would cost a monthly fee plus key-policy wiring for no added protection."
)

// scannerMetadata records, on each resource, the checkov checks it is
// exempt from and why. test-infra runs checkov and fails on any check
// that fails without such a record.
func (s *Stack) scannerMetadata() {
	skip := func(c constructs.IConstruct, skips ...ScannerSkip) {
		res, ok := c.Node().DefaultChild().(awscdk.CfnResource)
		if !ok {
			res = c.(awscdk.CfnResource)
		}
		list := make([]map[string]string, len(skips))
		for i, sk := range skips {
			list[i] = map[string]string{"id": sk.ID, "comment": sk.Reason}
		}
		res.AddMetadata(jsii.String("checkov"), map[string]any{"skip": list})
	}

	skip(s.Table, ScannerSkip{"CKV_AWS_119", "DynamoDB encrypts the table at rest with an AWS owned key; a customer managed " +
		"key would add a monthly fee and a per-request KMS charge on every read and write, and the data is not subject to a key-custody rule."})
	skip(s.DLQ, ScannerSkip{"CKV_AWS_27", "The queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled: true), " +
		"which checkov 3.3.30 does not recognise; it holds only failure metadata (shard and sequence numbers), never cell data."})
	if s.RetireQueue != nil {
		skip(s.RetireQueue, ScannerSkip{"CKV_AWS_27", "The queue is encrypted at rest with SQS-managed keys (SqsManagedSseEnabled: true), " +
			"which checkov 3.3.30 does not recognise; it holds only retention passes (a sheet id and a due time), never cell data."})
	}
	skip(s.TokenKey, ScannerSkip{"CKV_AWS_149", "Secrets Manager encrypts the secret with its AWS managed key; only the API " +
		"function's role may read it (IAM), and a customer managed key would add a fee for no added protection."})

	for _, fn := range []struct {
		c     constructs.IConstruct
		extra []ScannerSkip
	}{
		{s.API, []ScannerSkip{
			{"CKV_AWS_116", "Invoked synchronously by API Gateway: a Lambda dead-letter queue applies to asynchronous invocations only, and the caller sees the error."},
			{"CKV_AWS_115", "The HTTP API stage's throttling (rate and burst) bounds the API function; a reservation would also cap legitimate traffic and take concurrency from the account's pool."},
		}},
		{s.Workflow, []ScannerSkip{
			{"CKV_AWS_116", "Invoked synchronously by its DynamoDB stream event source mapping, whose on-failure destination (the StreamDLQ queue) receives what fails; a function DLQ would never be used."},
		}},
		{s.Sweeper, []ScannerSkip{
			{"CKV_AWS_116", "Invoked by a schedule with no retries on purpose: the next tick sweeps again, and its errors raise an alarm; a failed sweep has no payload worth keeping."},
		}},
	} {
		skip(fn.c, append([]ScannerSkip{{"CKV_AWS_117", reasonNoVPC}, {"CKV_AWS_173", reasonEnvNoSecrets}}, fn.extra...)...)
	}

	for _, lg := range s.logGroups {
		skip(lg, ScannerSkip{"CKV_AWS_158", reasonLogsKMS})
	}
	if s.AccessLogs != nil {
		skip(s.AccessLogs, ScannerSkip{"CKV_AWS_18", "This is the server access log bucket of the blob bucket: " +
			"logging it would need yet another bucket, and it holds logs, not data."})
	}
}
