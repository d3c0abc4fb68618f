package awsschema

// The functions publish their metrics in CloudWatch's Embedded Metric
// Format (internal/lambdarun); the stack graphs them and alarms on some.
// The metrics themselves are defined next to the code that counts them
// (pkg/api, pkg/spreadsheet, pkg/workers, pkg/enginecache); these are the
// names the stack refers to, checked against those definitions by
// internal/lambdarun's tests.
const (
	// EnvMetricsNamespace is the CloudWatch namespace of the functions'
	// metrics; DefaultMetricsNamespace when unset. The stack sets
	// MetricsNamespace(stack name), so that two stacks in one account
	// keep their metrics apart.
	EnvMetricsNamespace     = "SHEETLOG_METRICS_NAMESPACE"
	DefaultMetricsNamespace = "Sheetlog"

	// DimFunction is the dimension every metric carries: the function's
	// name (FunctionAPI, FunctionWorkflow, FunctionSweeper).
	DimFunction = "function"

	MetricHTTPRequests     = "sheetlog_http_requests_total"
	MetricHTTPDuration     = "sheetlog_http_request_duration_seconds"
	MetricAppendedEntries  = "sheetlog_appended_entries_total"
	MetricAppendConflicts  = "sheetlog_append_conflicts_total"
	MetricSnapshots        = "sheetlog_snapshots_total"
	MetricSnapshotDuration = "sheetlog_snapshot_duration_seconds"
	MetricSnapshotTiles    = "sheetlog_snapshot_tiles_total"
	MetricWorkflowRetries  = "sheetlog_workflow_retries_total"
	MetricPendingOldestAge = "sheetlog_pending_oldest_age_seconds"
	MetricCacheEngines     = "sheetlog_engine_cache_engines"
	MetricCacheBytes       = "sheetlog_engine_cache_bytes"

	// DimResult is the label of MetricSnapshots; ResultFailed the value
	// of the runs that failed.
	DimResult    = "result"
	ResultFailed = "failed"
)

// MetricsNamespace is the namespace the stack named stack publishes in.
func MetricsNamespace(stack string) string { return DefaultMetricsNamespace + "/" + stack }
