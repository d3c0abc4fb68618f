package enginecache

import "github.com/sheetlog/sheetlog/pkg/metrics"

// How full the process's engine caches are, summed over its caches (the
// server has one of host engines and one of worker engines, each bounded
// by half of -cache-mb; a Lambda function has one).
var (
	cachedEngines = metrics.NewGauge("sheetlog_engine_cache_engines",
		"Engines held by the process's engine caches.", metrics.Count)
	cachedBytes = metrics.NewGauge("sheetlog_engine_cache_bytes",
		"Approximate heap held by the cached engines (the sum of their footprints as last reported).", metrics.Bytes)
)
