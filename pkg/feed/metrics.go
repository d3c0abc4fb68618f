package feed

import "github.com/sheetlog/sheetlog/pkg/metrics"

// feedWaiters counts the change feed requests held now, in both
// deployments: the server's Notifier and the Lambda's Poller share the
// waiting loop that counts them.
var feedWaiters = metrics.NewGauge("sheetlog_feed_waiters",
	"Change feed requests (GET log?wait=N) held now, waiting for the sheet's log to grow.", metrics.Count)
