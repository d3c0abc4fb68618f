package sheetlogstack

import (
	"strings"

	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// suppressNagFindings records, on the resources concerned, why the
// findings of cdk-nag's AwsSolutions rules that remain are acceptable.
// Each suppression names the one finding it is for (appliesTo) where the
// rule reports several. The tests run the rules and fail on any finding
// not suppressed here.
func (s *Stack) suppressNagFindings() {
	// IAM5 reports the pattern as Resource::<LogicalId.Arn>/sheets/*/*.
	blobPattern := "/" + awsschema.BlobPrefix("*") + "*"
	blobObjects := &cdknag.RegexAppliesTo{
		Regex: jsii.String(`/^Resource::<Blobs[0-9A-F]{8}\.Arn>` + jsRegexQuote(blobPattern) + `$/`),
	}
	for _, fn := range []struct {
		name    string
		role    any
		actions string
	}{
		{awsschema.FunctionAPI, s.API.Role(), "s3:GetObject"},
		{awsschema.FunctionWorkflow, s.Workflow.Role(), s.writerBlobActions()},
		{awsschema.FunctionSweeper, s.Sweeper.Role(), s.writerBlobActions()},
	} {
		cdknag.NagSuppressions_AddResourceSuppressions(fn.role, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("Blob keys are " + awsschema.BlobPrefix("{sheet}") + "{name}, one prefix per sheet, made at run time, " +
				"so no fixed list of object ARNs exists. The wildcard is confined to the " + blobPattern[1:] +
				" objects of this stack's own blob bucket, and the " + fn.name + " may only " + fn.actions + " there."),
			AppliesTo: &[]any{blobObjects},
		}}, jsii.Bool(true))
	}

	cdknag.NagSuppressions_AddResourceSuppressions(s.Workflow.Role(), &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String("dynamodb:ListStreams has no resource-level permissions: IAM accepts only * for it. The event source " +
			"mapping's grant adds it beside DescribeStream, GetRecords and GetShardIterator, which are scoped to this table's " +
			"stream ARN; ListStreams only lists stream ARNs, it reads no data."),
		AppliesTo: &[]any{"Resource::*"},
	}}, jsii.Bool(true))
	s.suppressTracingFindings()

	cdknag.NagSuppressions_AddResourceSuppressions(s.TokenKey, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-SMG4"),
		Reason: jsii.String("The secret is the HMAC key of blob listing continuation tokens, short-lived cursors. Rotating it " +
			"would only invalidate the listings clients are paging through; it guards no credential, and a leaked key lets " +
			"someone forge cursors within directories they may list anyway. Rotate by hand (put a new value) if needed."),
	}}, jsii.Bool(true))

	for _, r := range s.preflight {
		cdknag.NagSuppressions_AddResourceSuppressions(r, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-APIG4"),
			Reason: jsii.String("CORS preflight route (OPTIONS): browsers never send credentials on a preflight, so it " +
				"cannot be authorized; API Gateway answers it from the API's CORS configuration. Every other route is authorized."),
		}}, jsii.Bool(true))
	}

	cdknag.NagSuppressions_AddResourceSuppressions(s.DLQ, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("This queue is itself a dead-letter queue: the on-failure destination of the stream's event source " +
			"mapping (SQS3 only recognises redrive-policy DLQs). Nothing consumes it automatically, so a DLQ behind it would " +
			"never receive anything; its depth has an alarm instead."),
	}}, jsii.Bool(true))
}

// jsRegexQuote escapes s for a JavaScript regular expression literal.
func jsRegexQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\/^$.*+?()[]{}|`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writerBlobActions names what the functions that write snapshots may do
// to blobs.
func (s *Stack) writerBlobActions() string {
	if s.Props.Retention.on() {
		return "s3:GetObject, s3:PutObject and (retiring snapshots) s3:DeleteObject"
	}
	return "s3:GetObject and s3:PutObject"
}
