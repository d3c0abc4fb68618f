package sheetlogstack

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// retireQueueAction: the workflow function sends delayed passes, the
// sweeper also receives, deletes and puts back early ones.
func retireQueueAction(fn, a string) bool {
	switch fn {
	case "workflow":
		return a == "sqs:SendMessage"
	case "sweeper":
		return slices.Contains([]string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}, a)
	}
	return false
}

func onlyRetireQueue(s *synthesized, resources []string) bool {
	if s.stack.RetireQueue == nil {
		return false
	}
	want := show(getAtt(logicalID(s, s.stack.RetireQueue), "Arn"))
	return !slices.ContainsFunc(resources, func(r string) bool { return r != want })
}

// TestRetention: the defaults run retention (a retire queue, blob deletes
// for the two functions that retire, no table deletes); truncateLog adds
// BatchWriteItem on the table, to those two only; snapshotRetain=0 turns
// it all off; the context values reach the functions.
func TestRetention(t *testing.T) {
	s := defaults(t)
	check(t, "retire queue TLS-only policy", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::SQS::QueuePolicy"), map[string]any{
			"Queues": []any{ref(logicalID(s, s.stack.RetireQueue))},
			"PolicyDocument": assertions.Match_ObjectLike(&map[string]any{
				"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
					"Effect":    "Deny",
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}},
				})}),
			}),
		})
	})
	check(t, "retire queue", func() {
		s.tpl.HasResourceProperties(jsii.String("AWS::SQS::Queue"), map[string]any{
			"MessageRetentionPeriod": 4 * 24 * 3600, "VisibilityTimeout": 120, "SqsManagedSseEnabled": true,
		})
	})
	if got := tableDeleters(t, s); len(got) != 0 {
		t.Errorf("without truncation, roles %v may batch-write the table", got)
	}

	tr := synth(t, map[string]string{CtxTruncateLog: "true", CtxSnapshotRetain: "3", CtxSnapshotGrace: "90s"})
	want := []string{roleOf(t, tr, logicalID(tr, tr.stack.Sweeper)), roleOf(t, tr, logicalID(tr, tr.stack.Workflow))}
	slices.Sort(want)
	if got := tableDeleters(t, tr); !slices.Equal(got, want) {
		t.Errorf("with truncation, roles %v may batch-write the table; want the workflow's and the sweeper's %v", got, want)
	}
	for _, fn := range []string{logicalID(tr, tr.stack.Workflow), logicalID(tr, tr.stack.Sweeper)} {
		env := props(tr.resources("AWS::Lambda::Function")[fn])["Environment"].(map[string]any)["Variables"].(map[string]any)
		if env[awsschema.EnvSnapshotRetain] != "3" || env[awsschema.EnvSnapshotGrace] != "1m30s" || env[awsschema.EnvTruncateLog] != "true" {
			t.Errorf("%s: environment %s", fn, show(env))
		}
	}

	off := synth(t, map[string]string{CtxSnapshotRetain: "0"})
	if off.stack.RetireQueue != nil || len(off.resources("AWS::SQS::Queue")) != 1 {
		t.Errorf("retention off still creates a retire queue")
	}
	for _, fn := range []string{logicalID(off, off.stack.Workflow), logicalID(off, off.stack.Sweeper)} {
		env := props(off.resources("AWS::Lambda::Function")[fn])["Environment"].(map[string]any)["Variables"].(map[string]any)
		if env[awsschema.EnvSnapshotRetain] != "0" || env[awsschema.EnvRetireQueueURL] != nil {
			t.Errorf("%s with retention off: environment %s", fn, show(env))
		}
	}
	for role, sts := range roleStatements(t, off) {
		for _, st := range sts {
			if slices.Contains(st.actions, "s3:DeleteObject") {
				t.Errorf("retention off, yet role %s may delete blobs", role)
			}
		}
	}
	checkIAMRetentionOff(t, off)

	for _, bad := range []map[string]string{
		{CtxSnapshotRetain: "-2"}, {CtxSnapshotRetain: "x"}, {CtxSnapshotGrace: "soon"}, {CtxTruncateLog: "maybe"},
	} {
		if _, err := PropsFromContext(newApp(t, bad).Node()); err == nil {
			t.Errorf("context %v: no error", bad)
		}
	}
	p, err := PropsFromContext(newApp(t, map[string]string{CtxSnapshotRetain: "0", CtxTruncateLog: "true"}).Node())
	if err == nil {
		_, err = p.withDefaults()
	}
	if err == nil || !strings.Contains(err.Error(), "truncateLog needs retention") {
		t.Errorf("truncation without retention: %v", err)
	}
	if p, _ := (Props{}).withDefaults(); p.Retention != (RetentionSettings{Retain: 2, Grace: 10 * time.Minute}) {
		t.Errorf("default retention %+v", p.Retention)
	}
}

// tableDeleters lists the roles that may BatchWriteItem, sorted.
func tableDeleters(t *testing.T, s *synthesized) []string {
	var roles []string
	for role, sts := range roleStatements(t, s) {
		for _, st := range sts {
			if slices.Contains(st.actions, "dynamodb:BatchWriteItem") || slices.Contains(st.actions, "dynamodb:DeleteItem") {
				roles = append(roles, role)
			}
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

// checkIAMRetentionOff: with retention off no role touches a retire
// queue (there is none) and the stack's other checks hold.
func checkIAMRetentionOff(t *testing.T, s *synthesized) {
	t.Helper()
	check(t, "no retire queue", func() {
		s.tpl.ResourcePropertiesCountIs(jsii.String("AWS::SQS::Queue"), map[string]any{
			"VisibilityTimeout": assertions.Match_AnyValue(),
		}, jsii.Number(0))
	})
}
