package lambdarun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// Retention is the snapshot retention of the functions that run it: the
// workflow function (a pass after each snapshot it completes) and the
// sweeper (the passes due when a grace ends, from the retire queue).
type Retention struct {
	// Retain is K; 0 keeps every snapshot (default spreadsheet's, 2).
	Retain int
	// Grace is G (default spreadsheet's, 10 minutes).
	Grace       time.Duration
	TruncateLog bool
	// QueueURL is the retire queue; empty, no pass is delayed, and what a
	// pass leaves for its grace waits for the sheet's next snapshot.
	QueueURL string
}

// On reports whether retention runs at all.
func (r Retention) On() bool { return r.Retain > 0 }

// Env is r as the functions' environment (what FromEnv reads back); a
// negative Retain keeps every snapshot, as 0 does.
func (r Retention) Env() map[string]string {
	return map[string]string{
		awsschema.EnvSnapshotRetain: strconv.Itoa(max(r.Retain, 0)),
		awsschema.EnvSnapshotGrace:  r.Grace.String(),
		awsschema.EnvTruncateLog:    strconv.FormatBool(r.TruncateLog),
		awsschema.EnvRetireQueueURL: r.QueueURL,
	}
}

func retentionFromEnv(getenv func(string) string, bad func(name, v, want string)) Retention {
	r := Retention{Retain: spreadsheet.DefaultRetain, Grace: spreadsheet.DefaultRetireGrace,
		QueueURL: strings.TrimSpace(getenv(awsschema.EnvRetireQueueURL))}
	if v := strings.TrimSpace(getenv(awsschema.EnvSnapshotRetain)); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			bad(awsschema.EnvSnapshotRetain, v, "an integer >= 0")
		}
		r.Retain = n
	}
	if v := strings.TrimSpace(getenv(awsschema.EnvSnapshotGrace)); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			bad(awsschema.EnvSnapshotGrace, v, "a non-negative Go duration such as 10m")
		}
		r.Grace = d
	}
	if v := strings.TrimSpace(getenv(awsschema.EnvTruncateLog)); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(awsschema.EnvTruncateLog, v, "true or false")
		}
		r.TruncateLog = b
	}
	if r.TruncateLog && r.Retain == 0 {
		bad(awsschema.EnvTruncateLog, "true", "retention on ("+awsschema.EnvSnapshotRetain+" > 0): the log is truncated to the oldest snapshot kept")
	}
	return r
}

// engineOptions sets the retention options of worker engines, whose
// delayed passes go to q (nil: none).
func (r Retention) engineOptions(o *spreadsheet.Options, q *RetireQueue, log *slog.Logger) {
	if !r.On() {
		o.Retain = spreadsheet.RetainAll
		return
	}
	o.Retain, o.RetireGrace, o.TruncateLog = r.Retain, r.Grace, r.TruncateLog
	if r.Grace == 0 {
		o.RetireGrace = spreadsheet.NoGrace
	}
	// Never the engine's own timer: a Lambda is frozen between
	// invocations.
	o.RetireLater = func(ctx context.Context, sheet string, due time.Time) {
		if q == nil {
			log.Debug("no retire queue: what the pass left waits for the next snapshot", "sheet", sheet, "due", due)
			return
		}
		q.Later(ctx, sheet, due)
	}
}

// SQSAPI is what the retire queue needs of an SQS client.
type SQSAPI interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// RetireQueue is the SQS queue of delayed retention passes. SQS delays a
// message by at most 15 minutes; a pass due later is received early by
// the sweeper and hidden again until it is due.
type RetireQueue struct {
	client SQSAPI
	url    string
	log    *slog.Logger
}

// Limits of SQS: DelaySeconds up to 15 minutes, a visibility timeout up
// to 12 hours.
const (
	maxDelay      = 15 * time.Minute
	maxVisibility = 12 * time.Hour
	// receiveVisibility hides a received message while its pass runs;
	// a pass that fails leaves it to come back then.
	receiveVisibility = 2 * time.Minute
)

// NewRetireQueue is the retire queue at url.
func NewRetireQueue(client SQSAPI, url string, log *slog.Logger) *RetireQueue {
	return &RetireQueue{client: client, url: url, log: log}
}

// Later sends the message of a pass over sheet due at due, delayed until
// then (at most 15 minutes). A failure is logged: the sheet's next
// snapshot runs a pass anyway.
func (q *RetireQueue) Later(ctx context.Context, sheet string, due time.Time) {
	body, _ := json.Marshal(awsschema.RetireMessage{Sheet: sheet, Due: due.UTC()})
	delay := seconds(min(max(time.Until(due), 0), maxDelay))
	_, err := q.client.SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: &q.url, MessageBody: aws.String(string(body)), DelaySeconds: delay,
	})
	if err != nil {
		q.log.Warn("could not queue a delayed retention pass; the sheet's next snapshot runs one", "sheet", sheet, "due", due, "err", err)
		return
	}
	q.log.Debug("retention pass queued", "sheet", sheet, "due", due, "delaySeconds", delay)
}

// seconds rounds d up to whole seconds.
func seconds(d time.Duration) int32 {
	return int32(math.Ceil(d.Seconds()))
}

// RetireResult is what one drain of the retire queue did.
type RetireResult struct {
	// Passes counts the sheets whose pass ran; Failed those whose pass
	// failed (their messages come back); Early the messages received
	// before their time and hidden until it; Malformed the bodies that
	// could not be read (deleted).
	Passes    int `json:"passes"`
	Failed    int `json:"failed"`
	Early     int `json:"early"`
	Malformed int `json:"malformed"`
}

// Add adds o's counts to r.
func (r *RetireResult) Add(o RetireResult) {
	r.Passes += o.Passes
	r.Failed += o.Failed
	r.Early += o.Early
	r.Malformed += o.Malformed
}

// DrainRetireQueue receives the due messages of q, at most maxMessages,
// and runs one pass per sheet they name on the worker engines, deleting
// the messages of the passes that succeed. It stops when the queue has
// nothing visible or the invocation's deadline is near.
func (w *Workflows) DrainRetireQueue(ctx context.Context, q *RetireQueue, maxMessages int, now func() time.Time) (RetireResult, error) {
	var res RetireResult
	if q == nil {
		return res, nil
	}
	for seen := 0; seen < maxMessages; {
		if d, ok := ctx.Deadline(); ok && time.Until(d) < 2*DeadlineMargin {
			return res, nil
		}
		out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:            &q.url,
			MaxNumberOfMessages: int32(min(10, maxMessages-seen)),
			VisibilityTimeout:   seconds(receiveVisibility),
			// Short polling: a long poll would hold the sweeper for
			// nothing on an empty queue (and a serialized emulator for
			// everyone). A message a short poll misses is received by
			// the next sweep.
			WaitTimeSeconds: 0,
		})
		if err != nil {
			return res, fmt.Errorf("receiving from the retire queue: %w", err)
		}
		if len(out.Messages) == 0 {
			return res, nil
		}
		seen += len(out.Messages)
		bySheet := map[string][]types.Message{}
		var order []string
		for _, m := range out.Messages {
			var rm awsschema.RetireMessage
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &rm); err != nil || rm.Sheet == "" {
				res.Malformed++
				w.log.Error("malformed retire message; deleted", "body", aws.ToString(m.Body), "err", err)
				q.delete(ctx, []types.Message{m})
				continue
			}
			if wait := rm.Due.Sub(now()); wait > time.Second {
				res.Early++
				q.hide(ctx, m, wait)
				continue
			}
			if _, ok := bySheet[rm.Sheet]; !ok {
				order = append(order, rm.Sheet)
			}
			bySheet[rm.Sheet] = append(bySheet[rm.Sheet], m)
		}
		for _, sheet := range order {
			err := w.cache.Do(ctx, sheet, func(e *spreadsheet.Engine) error {
				_, err := e.Retire(ctx)
				return err
			})
			if err != nil {
				res.Failed++
				w.log.Warn("retention pass failed; its message comes back", "sheet", sheet, "err", err)
				continue
			}
			res.Passes++
			q.delete(ctx, bySheet[sheet])
		}
	}
	return res, nil
}

// hide makes m invisible until its pass is due.
func (q *RetireQueue) hide(ctx context.Context, m types.Message, wait time.Duration) {
	_, err := q.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{
		QueueUrl: &q.url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: seconds(min(wait, maxVisibility)),
	})
	if err != nil {
		q.log.Warn("could not put back an early retire message; it comes back sooner", "err", err)
	}
}

// delete deletes messages (at most 10, one receive's worth).
func (q *RetireQueue) delete(ctx context.Context, ms []types.Message) {
	entries := make([]types.DeleteMessageBatchRequestEntry, len(ms))
	for i, m := range ms {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
	}
	out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &q.url, Entries: entries})
	if err == nil && len(out.Failed) > 0 {
		err = errors.New(aws.ToString(out.Failed[0].Message))
	}
	if err != nil {
		// The pass runs again when the message comes back: harmless.
		q.log.Warn("could not delete retire messages", "err", err)
	}
}
