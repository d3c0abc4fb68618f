package sheetlogstack

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// Every function publishes under the stack's own namespace and, by
// default, is traced by X-Ray; the switch turns tracing (and its IAM
// statement) off. An HTTP API stage cannot be traced (API Gateway traces
// REST APIs only), so the stage has no such setting either way.
func TestMetricsNamespaceAndTracing(t *testing.T) {
	for _, c := range []struct {
		ctx     map[string]string
		tracing bool
	}{{nil, true}, {map[string]string{CtxTracing: "true"}, true}, {map[string]string{CtxTracing: "false"}, false}} {
		s := synth(t, c.ctx)
		stmts := roleStatements(t, s)
		for _, fn := range []string{logicalID(s, s.stack.API), logicalID(s, s.stack.Workflow), logicalID(s, s.stack.Sweeper)} {
			p := props(s.resources("AWS::Lambda::Function")[fn])
			env := p["Environment"].(map[string]any)["Variables"].(map[string]any)
			if env[awsschema.EnvMetricsNamespace] != awsschema.MetricsNamespace(DefaultStackName) {
				t.Errorf("%v %s: namespace %v", c.ctx, fn, env[awsschema.EnvMetricsNamespace])
			}
			mode := ""
			if tc, ok := p["TracingConfig"].(map[string]any); ok {
				mode, _ = tc["Mode"].(string)
			}
			xray := false
			for _, st := range stmts[roleOf(t, s, fn)] {
				if slices.Contains(st.resources, `"*"`) && slices.Contains(st.actions, xrayActions[0]) && slices.Contains(st.actions, xrayActions[1]) {
					xray = true
				}
			}
			if c.tracing != (mode == "Active") || c.tracing != xray {
				t.Errorf("%v %s: tracing mode %q, X-Ray statement %v; want tracing %v", c.ctx, fn, mode, xray, c.tracing)
			}
		}
		for id, st := range s.resources("AWS::ApiGatewayV2::Stage") {
			for k := range props(st) {
				if strings.Contains(strings.ToLower(k), "tracing") {
					t.Errorf("stage %s has %s", id, k)
				}
			}
		}
	}
}

// The snapshot failures alarm adds up the failed runs of the workflow
// function and the sweeper, and fires only when every one of
// SnapshotFailurePeriods periods saw some; the pending age alarm's
// threshold follows the sweep grace.
func TestMetricAlarms(t *testing.T) {
	s := defaults(t)
	var math map[string]any
	for _, a := range s.resources("AWS::CloudWatch::Alarm") {
		if _, ok := props(a)["Metrics"]; ok {
			if math != nil {
				t.Fatal("more than one metric math alarm")
			}
			math = props(a)
		}
	}
	if math == nil {
		t.Fatal("no snapshot failures alarm")
	}
	if math["EvaluationPeriods"] != float64(SnapshotFailurePeriods) || math["DatapointsToAlarm"] != float64(SnapshotFailurePeriods) ||
		math["Threshold"] != float64(0) || math["ComparisonOperator"] != "GreaterThanThreshold" {
		t.Errorf("snapshot failures alarm %s", show(math))
	}
	fns := map[string]bool{}
	for _, q := range list(math["Metrics"]) {
		q := q.(map[string]any)
		if e, ok := q["Expression"].(string); ok {
			if e != "FILL(wf, 0) + FILL(sw, 0)" || q["ReturnData"] != true {
				t.Errorf("expression %s", show(q))
			}
			continue
		}
		ms := q["MetricStat"].(map[string]any)
		m := ms["Metric"].(map[string]any)
		if m["Namespace"] != awsschema.MetricsNamespace(DefaultStackName) || m["MetricName"] != awsschema.MetricSnapshots || ms["Stat"] != "Sum" {
			t.Errorf("metric %s", show(q))
		}
		dims := map[string]string{}
		for _, d := range list(m["Dimensions"]) {
			d := d.(map[string]any)
			dims[d["Name"].(string)] = d["Value"].(string)
		}
		if dims[awsschema.DimResult] != awsschema.ResultFailed {
			t.Errorf("metric %s does not count failures", show(q))
		}
		fns[dims[awsschema.DimFunction]] = true
	}
	if !fns[awsschema.FunctionWorkflow] || !fns[awsschema.FunctionSweeper] || len(fns) != 2 {
		t.Errorf("failures counted from %v", fns)
	}

	longer := build(t, nil, func(p *Props) { p.SweepGrace = time.Hour })
	if longer.Props.PendingAgeAlarm != 2*time.Hour {
		t.Errorf("pending age alarm %v for a one-hour grace", longer.Props.PendingAgeAlarm)
	}
	if _, err := (Props{SweepGrace: time.Hour, PendingAgeAlarm: time.Hour}).withDefaults(); err == nil {
		t.Error("a pending age alarm at the sweep grace was accepted")
	}
}

// The dashboard shows what an operator needs (docs/operations.md):
// appends, snapshot duration p50/p99, the oldest pending age, errors,
// throttles, iterator age, dead-letter queue depth, and every alarm.
func TestDashboard(t *testing.T) {
	s := defaults(t)
	_, d := s.only(t, "AWS::CloudWatch::Dashboard")
	p := props(d)
	if p["DashboardName"] != DefaultStackName {
		t.Errorf("dashboard name %v", p["DashboardName"])
	}
	body := show(p["DashboardBody"]) // a Fn::Join of text and references
	for _, want := range []string{
		awsschema.MetricAppendedEntries, awsschema.MetricSnapshotDuration, awsschema.MetricPendingOldestAge,
		awsschema.MetricSnapshots, `\"p50\"`, `\"p99\"`, `\"Errors\"`, `\"Throttles\"`, `\"IteratorAge\"`,
		`\"ApproximateNumberOfMessagesVisible\"`, `\"IntegrationLatency\"`, awsschema.MetricsNamespace(DefaultStackName),
		`\"alarm\"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
	for id := range s.resources("AWS::CloudWatch::Alarm") {
		if !strings.Contains(body, id) {
			t.Errorf("the dashboard's alarm widget lacks %s", id)
		}
	}
	// Under the free tier's 50 metrics per dashboard.
	if n := strings.Count(body, `\"region\"`); n == 0 {
		t.Error("no metrics found in the body")
	}
	if n := strings.Count(body, awsschema.MetricsNamespace(DefaultStackName)) + strings.Count(body, `\"AWS/`); n > 50 {
		t.Errorf("%d metrics on the dashboard, over the free tier's 50", n)
	}
}
