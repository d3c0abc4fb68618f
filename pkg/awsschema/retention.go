package awsschema

import "time"

// Environment variables of snapshot retention, read by the workflow and
// sweeper functions (the functions that run retention passes).
const (
	// EnvSnapshotRetain is K, the completed snapshots kept per sheet; 0
	// keeps every snapshot.
	EnvSnapshotRetain = "SHEETLOG_SNAPSHOT_RETAIN"
	// EnvSnapshotGrace is G, how long an older snapshot stays after a
	// newer one completed (a Go duration such as "10m").
	EnvSnapshotGrace = "SHEETLOG_SNAPSHOT_GRACE"
	// EnvTruncateLog ("true" or "false") truncates each log to its oldest
	// snapshot kept after retention.
	EnvTruncateLog = "SHEETLOG_TRUNCATE_LOG"
	// EnvRetireQueueURL is the SQS queue of delayed retention passes: the
	// workflow function sends a message, delayed until the grace of a
	// sheet's snapshots ends, and the sweeper receives it and runs the
	// pass.
	EnvRetireQueueURL = "SHEETLOG_RETIRE_QUEUE_URL"
)

// RetireMessage is the JSON body of a message on the retire queue: a
// retention pass of Sheet is due at Due.
type RetireMessage struct {
	Sheet string    `json:"sheet"`
	Due   time.Time `json:"due"`
}
