package sheetlogstack

import (
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// RetentionSettings are snapshot retention's (docs/retention.md): the
// workflow function retires after each snapshot it completes, and the
// sweeper runs the passes due when a grace ends, from the retire queue.
type RetentionSettings struct {
	// Retain is K, the completed snapshots kept per sheet. Default 2;
	// KeepAllSnapshots turns retention off (no queue, no deletes).
	Retain int
	// Grace is G, how long an older snapshot stays after a newer one
	// completed. Default 10 minutes.
	Grace time.Duration
	// TruncateLog truncates each log to its oldest snapshot kept, after
	// retention. Default false: the log is the sheet's history. Only
	// then may the functions batch-delete table items.
	TruncateLog bool
}

// KeepAllSnapshots (RetentionSettings.Retain) turns retention off.
const KeepAllSnapshots = -1

// Defaults of RetentionSettings.
const (
	DefaultSnapshotRetain = 2
	DefaultSnapshotGrace  = 10 * time.Minute
)

func (r *RetentionSettings) defaults() {
	if r.Retain == 0 {
		r.Retain = DefaultSnapshotRetain
	}
	if r.Grace == 0 {
		r.Grace = DefaultSnapshotGrace
	}
}

func (r RetentionSettings) on() bool { return r.Retain > 0 }

func (r RetentionSettings) validate(bad func(format string, args ...any)) {
	if r.Retain < KeepAllSnapshots {
		bad("snapshot retain %d: want at least 1, or KeepAllSnapshots", r.Retain)
	}
	if r.Grace < 0 || r.Grace%time.Second != 0 {
		bad("snapshot grace %v: want whole seconds", r.Grace)
	}
	if r.TruncateLog && !r.on() {
		bad("truncateLog needs retention: the log is truncated to the oldest snapshot kept")
	}
}

// retentionFromContext reads snapshotRetain (0 keeps every snapshot),
// snapshotGrace and truncateLog.
func retentionFromContext(str func(string) string, boolean func(string) bool, errs *[]error) RetentionSettings {
	var r RetentionSettings
	if s := str(CtxSnapshotRetain); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			*errs = append(*errs, fmt.Errorf("context %s=%q: want an integer >= 0 (0 keeps every snapshot)", CtxSnapshotRetain, s))
		}
		r.Retain = n
		if n == 0 {
			r.Retain = KeepAllSnapshots
		}
	}
	if s := str(CtxSnapshotGrace); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			*errs = append(*errs, fmt.Errorf("context %s=%q: want a duration >= 0 such as 10m", CtxSnapshotGrace, s))
		}
		r.Grace = d
	}
	r.TruncateLog = boolean(CtxTruncateLog)
	return r
}

// retention configures the functions that run retention passes, and
// creates what they need: the retire queue and the permissions to delete
// snapshot blobs (and log items, when the log is truncated). With
// retention off, the functions are told so and get neither.
func (s *Stack) retention() {
	r := s.Props.Retention
	fns := []awslambda.Function{s.Workflow, s.Sweeper}
	if !r.on() {
		for _, fn := range fns {
			fn.AddEnvironment(jsii.String(awsschema.EnvSnapshotRetain), jsii.String("0"), nil)
		}
		return
	}
	s.RetireQueue = awssqs.NewQueue(s.Stack, jsii.String("RetireQueue"), &awssqs.QueueProps{
		Encryption: awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL: jsii.Bool(true),
		// A message is delayed until its pass is due (at most 15
		// minutes; the sweeper hides one received early). Four days
		// outlast any outage of the sweeper; a lost message only delays
		// retention until the sheet's next snapshot.
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		VisibilityTimeout: awscdk.Duration_Minutes(jsii.Number(2)),
	})
	env := map[string]string{
		awsschema.EnvSnapshotRetain: strconv.Itoa(r.Retain),
		awsschema.EnvSnapshotGrace:  r.Grace.String(),
		awsschema.EnvTruncateLog:    strconv.FormatBool(r.TruncateLog),
		awsschema.EnvRetireQueueURL: *s.RetireQueue.QueueUrl(),
	}
	allow := func(fn awslambda.Function, actions []string, resources ...*string) {
		fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(actions...),
			Resources: &resources,
		}))
	}
	blobs := s.Bucket.ArnForObjects(jsii.String(awsschema.BlobPrefix("*") + "*"))
	for _, fn := range fns {
		for k, v := range env {
			fn.AddEnvironment(jsii.String(k), jsii.String(v), nil)
		}
		// Retiring removes a snapshot's blobs (DeleteObjects is
		// authorized as s3:DeleteObject per key).
		allow(fn, []string{"s3:DeleteObject"}, blobs)
		if r.TruncateLog {
			// Truncation deletes the items before the new start,
			// 25 keys per BatchWriteItem.
			allow(fn, []string{"dynamodb:BatchWriteItem"}, s.Table.TableArn())
		}
	}
	allow(s.Workflow, []string{"sqs:SendMessage"}, s.RetireQueue.QueueArn())
	allow(s.Sweeper, []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}, s.RetireQueue.QueueArn())

	cdknag.NagSuppressions_AddResourceSuppressions(s.RetireQueue, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-SQS3"),
		Reason: jsii.String("The retire queue holds delayed snapshot retention passes. A message whose pass fails comes back " +
			"after its visibility timeout and is retried until it succeeds or the queue's retention ends; a message lost either " +
			"way only delays retention until the sheet's next snapshot, which runs a pass itself. A dead-letter queue would " +
			"hold nothing anyone needs to act on."),
	}}, jsii.Bool(true))
}
