package lambdarun_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/internal/moto"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/eventlog"
	"github.com/sheetlog/sheetlog/pkg/workers"
)

func TestRetentionConfig(t *testing.T) {
	base := map[string]string{awsschema.EnvTable: "t", awsschema.EnvBucket: "b"}
	env := func(extra map[string]string) func(string) string {
		return func(k string) string {
			if v, ok := extra[k]; ok {
				return v
			}
			return base[k]
		}
	}
	c, err := lambdarun.FromEnv(env(nil))
	if err != nil || c.Retention != (lambdarun.Retention{Retain: 2, Grace: 10 * time.Minute}) {
		t.Fatalf("defaults: %+v %v", c.Retention, err)
	}
	c, err = lambdarun.FromEnv(env(map[string]string{awsschema.EnvSnapshotRetain: "3", awsschema.EnvSnapshotGrace: "2s",
		awsschema.EnvTruncateLog: "true", awsschema.EnvRetireQueueURL: " http://q "}))
	if err != nil || c.Retention != (lambdarun.Retention{Retain: 3, Grace: 2 * time.Second, TruncateLog: true, QueueURL: "http://q"}) {
		t.Fatalf("set: %+v %v", c.Retention, err)
	}
	for _, bad := range []map[string]string{
		{awsschema.EnvSnapshotRetain: "-1"}, {awsschema.EnvSnapshotGrace: "later"}, {awsschema.EnvTruncateLog: "yes please"},
		{awsschema.EnvSnapshotRetain: "0", awsschema.EnvTruncateLog: "true"},
	} {
		if _, err := lambdarun.FromEnv(env(bad)); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestRetireQueue: the workflow function's passes leave the previous
// snapshot for its grace and queue a delayed message; the sweeper's
// drain puts a message received early back, then, once the grace is
// over, runs the pass (the newest snapshot alone remains) and deletes
// the message.
func TestRetireQueue(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	client := sqs.NewFromConfig(f.env.Config)
	q, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(moto.Name("retire"))})
	if err != nil {
		t.Fatal(err)
	}
	f.stores.Retire = lambdarun.NewRetireQueue(client, aws.ToString(q.QueueUrl), slog.New(slog.DiscardHandler))
	const grace = 3 * time.Second
	w := f.workflows(t, func(c *lambdarun.Config) {
		c.Retention = lambdarun.Retention{Retain: 1, Grace: grace, QueueURL: aws.ToString(q.QueueUrl)}
	})
	// Snapshots at 2 and 5, run by the workflow function.
	f.appendCells(t, "r", 0, 8, map[int]string{2: eventlog.WorkflowSnapshot, 5: eventlog.WorkflowSnapshot})
	for _, id := range []int{2, 5} {
		job := lambdarun.Job{ID: strconv.Itoa(id), Msg: workers.PendingWorkflowMessage{Sheet: "r", Workflow: eventlog.WorkflowSnapshot, SequenceID: eventlog.SequenceID(id)}}
		if errs := w.RunAll(ctx, []lambdarun.Job{job}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	dirs := func() []string {
		t.Helper()
		root, err := f.stores.Blobs.Sheet("r")
		if err != nil {
			t.Fatal(err)
		}
		page, err := root.Query(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return page.Dirs
	}
	if got := dirs(); len(got) != 2 {
		t.Fatalf("directories %v right after the second snapshot, want both (5 is inside its grace)", got)
	}
	// A message is queued, delayed until the grace ends: nothing to
	// receive yet.
	res, err := w.DrainRetireQueue(ctx, f.stores.Retire, 10, time.Now)
	if err != nil || res != (lambdarun.RetireResult{}) {
		t.Fatalf("drain inside the grace: %+v %v", res, err)
	}
	// A sweeper whose clock runs ahead sees it due; one whose message
	// comes early puts it back. Receive it early by asking SQS directly,
	// with the clock of the drain behind.
	time.Sleep(grace + time.Second)
	early, err := w.DrainRetireQueue(ctx, f.stores.Retire, 10, func() time.Time { return time.Now().Add(-time.Hour) })
	if err != nil || early.Early != 1 || early.Passes != 0 {
		t.Fatalf("drain of a message not yet due: %+v %v", early, err)
	}
	if got := dirs(); len(got) != 2 {
		t.Fatalf("an early message retired: %v", got)
	}
	// The message was hidden for an hour (the early clock's wait): send
	// one that is due, as the next completion would.
	body, _ := json.Marshal(awsschema.RetireMessage{Sheet: "r", Due: time.Now()})
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
	res, err = w.DrainRetireQueue(ctx, f.stores.Retire, 10, time.Now)
	if err != nil || res.Passes != 1 || res.Failed != 0 {
		t.Fatalf("drain once due: %+v %v", res, err)
	}
	if got := dirs(); len(got) != 1 || got[0] != "5" {
		t.Fatalf("directories %v after the pass, want [5]", got)
	}
	if e := f.entry(t, "r", 2); e.Snapshot != "" {
		t.Fatalf("entry 2 still names snapshot %q", e.Snapshot)
	}
	// A malformed message is deleted, not retried forever.
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String("{")}); err != nil {
		t.Fatal(err)
	}
	if res, err := w.DrainRetireQueue(ctx, f.stores.Retire, 10, time.Now); err != nil || res.Malformed != 1 {
		t.Fatalf("a malformed message: %+v %v", res, err)
	}
}
