package lambdarun

// NewMetricsTo is NewMetrics writing to out instead of standard output.
var NewMetricsTo = newMetrics
