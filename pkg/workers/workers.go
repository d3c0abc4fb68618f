// Package workers defines how the spreadsheet engine hands background work
// to workers: a host tells workers about pending workflows, a worker runs
// them through a handler that the worker-side engine installs.
//
// The event log remains the source of truth: a message only says "look at
// this entry". Every delivery may be duplicated, delayed or lost, and
// handlers are idempotent, so a host may re-send freely.
//
// SimpleWorkerHost and SimpleWorker are the reference pair: in-process,
// asynchronous, no isolation and no retries. The supervised pool of the
// single-machine server and the DynamoDB-stream deployment live elsewhere
// and implement the same interfaces.
package workers

import (
	"context"

	"github.com/sheetlog/sheetlog/pkg/eventlog"
)

// Message is the tagged union of messages a worker receives. Its only
// member today is PendingWorkflowMessage.
type Message interface {
	// MessageType is the union tag, e.g. "PendingWorkflow".
	MessageType() string
}

// PendingWorkflowMessage asks a worker to run the workflow requested at
// one log entry of one sheet.
type PendingWorkflowMessage struct {
	Sheet      string
	Workflow   string
	SequenceID eventlog.SequenceID
}

// MessageType implements Message.
func (PendingWorkflowMessage) MessageType() string { return "PendingWorkflow" }

// Handler runs one message. A non-nil error asks the host to retry (hosts
// that retry do so with backoff; the reference host does not retry).
type Handler func(ctx context.Context, m Message) error

// WorkerHost is what the host side of the engine holds.
type WorkerHost interface {
	// Outstanding reports whether workflows posted for sheet have not
	// finished yet, so the engine can delay requesting another. A host
	// that cannot know (a stream forwards log changes by itself) returns
	// false and lets the log decide.
	Outstanding(sheet string) bool
}

// PostMessageWorkerHost is a host that is told about work explicitly.
type PostMessageWorkerHost interface {
	WorkerHost
	// PostMessage queues m for a worker and returns without running it.
	PostMessage(ctx context.Context, m Message) error
}

// Worker receives messages from a host. The worker-side engine installs
// the handler.
type Worker interface {
	SetHandler(h Handler)
}

// ImplicitHost is the host of deployments where the platform forwards log
// changes to workers by itself (DynamoDB Streams): the engine has nothing
// to post, and the log alone says what is pending.
type ImplicitHost struct{}

// Outstanding implements WorkerHost; an implicit host cannot know.
func (ImplicitHost) Outstanding(string) bool { return false }

// NoWorkflowsHost is the host of a thin client (rest-api.md): a client
// that appends over the HTTP API cannot request workflows, since the API
// refuses entries that carry pending. An engine given this host never
// sets pending; the deployment's own engines request the snapshots.
type NoWorkflowsHost struct{}

// Outstanding implements WorkerHost; a thin client cannot know.
func (NoWorkflowsHost) Outstanding(string) bool { return false }
