package sheetlogstack

import (
	"fmt"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

// What an operator watches (docs/operations.md): the functions publish
// sheetlog's metrics in Embedded Metric Format under the stack's own
// namespace; the stack graphs them beside the AWS metrics of the same
// path (errors, throttles, the stream's iterator age, the dead-letter
// queue) on one dashboard, alarms on the oldest pending workflow and on
// persistent snapshot failures, and turns on X-Ray active tracing.

// SnapshotFailurePeriods is how many 5-minute periods in a row must each
// see a failed snapshot run before the snapshot failures alarm fires: a
// failed run is retried, so one failure is routine; failures that go on
// for 15 minutes are not.
const SnapshotFailurePeriods = 3

// xrayActions are what active tracing needs; X-Ray has no resource-level
// permissions for them.
var xrayActions = []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords"}

// MetricsNamespace is the CloudWatch namespace the stack's functions
// publish in.
func (s *Stack) MetricsNamespace() string { return awsschema.MetricsNamespace(*s.StackName()) }

func (s *Stack) functions() []struct {
	name string
	fn   awslambda.Function
} {
	return []struct {
		name string
		fn   awslambda.Function
	}{{awsschema.FunctionAPI, s.API}, {awsschema.FunctionWorkflow, s.Workflow}, {awsschema.FunctionSweeper, s.Sweeper}}
}

// observability adds the metrics namespace to the functions, tracing,
// the two alarms on sheetlog's own metrics and the dashboard.
func (s *Stack) observability() {
	for _, f := range s.functions() {
		f.fn.AddEnvironment(jsii.String(awsschema.EnvMetricsNamespace), jsii.String(s.MetricsNamespace()), nil)
		if !s.Props.DisableTracing {
			f.fn.Node().DefaultChild().(awslambda.CfnFunction).SetTracingConfig(
				&awslambda.CfnFunction_TracingConfigProperty{Mode: jsii.String("Active")})
			f.fn.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Actions:   jsii.Strings(xrayActions...),
				Resources: jsii.Strings("*"),
			}))
		}
	}
	s.metricAlarms()
	s.dashboard()
}

// sheetlogMetric is one of the functions' own metrics. Only a graph's
// metrics are labelled: an alarm on a labelled metric becomes a metric
// math alarm.
func (s *Stack) sheetlogMetric(name, function, statistic string, period time.Duration, extra map[string]string, label string) awscloudwatch.Metric {
	dims := map[string]*string{awsschema.DimFunction: jsii.String(function)}
	for k, v := range extra {
		dims[k] = jsii.String(v)
	}
	props := &awscloudwatch.MetricProps{
		Namespace:     jsii.String(s.MetricsNamespace()),
		MetricName:    jsii.String(name),
		DimensionsMap: &dims,
		Statistic:     jsii.String(statistic),
		Period:        awscdk.Duration_Seconds(jsii.Number(period.Seconds())),
	}
	if label != "" {
		props.Label = jsii.String(label)
	}
	return awscloudwatch.NewMetric(props)
}

// addAlarm sends the alarm's changes to the alarm topic, if any, and
// lists it among the stack's alarms.
func (s *Stack) addAlarm(alarm awscloudwatch.Alarm) {
	if s.Props.AlarmTopicARN != "" {
		cfn := alarm.Node().DefaultChild().(awscloudwatch.CfnAlarm)
		cfn.SetAlarmActions(jsii.Strings(s.Props.AlarmTopicARN))
		cfn.SetOkActions(jsii.Strings(s.Props.AlarmTopicARN))
	}
	s.Alarms = append(s.Alarms, alarm)
}

func (s *Stack) metricAlarms() {
	p := s.Props
	five := 5 * time.Minute
	// The sweeper reports the oldest entry it found pending past its
	// grace period (0 when none): past the threshold, neither the stream
	// nor the sweeper completes it.
	age := s.sheetlogMetric(awsschema.MetricPendingOldestAge, awsschema.FunctionSweeper, "Maximum", five, nil, "")
	s.addAlarm(age.CreateAlarm(s.Stack, jsii.String("PendingAgeAlarm"), &awscloudwatch.CreateAlarmOptions{
		AlarmDescription: jsii.String(fmt.Sprintf("A requested workflow has been pending for more than %v: neither the stream "+
			"nor the sweeper completes it (docs/operations.md)", p.PendingAgeAlarm)),
		Threshold:          jsii.Number(p.PendingAgeAlarm.Seconds()),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	}))
	// Failed snapshot runs of the workflow function and the sweeper
	// together, in every one of SnapshotFailurePeriods periods.
	failed := map[string]string{awsschema.DimResult: awsschema.ResultFailed}
	failures := awscloudwatch.NewMathExpression(&awscloudwatch.MathExpressionProps{
		Expression: jsii.String("FILL(wf, 0) + FILL(sw, 0)"),
		UsingMetrics: &map[string]awscloudwatch.IMetric{
			"wf": s.sheetlogMetric(awsschema.MetricSnapshots, awsschema.FunctionWorkflow, "Sum", five, failed, ""),
			"sw": s.sheetlogMetric(awsschema.MetricSnapshots, awsschema.FunctionSweeper, "Sum", five, failed, ""),
		},
		Label:  jsii.String("failed snapshot runs"),
		Period: awscdk.Duration_Minutes(jsii.Number(5)),
	})
	s.addAlarm(failures.CreateAlarm(s.Stack, jsii.String("SnapshotFailuresAlarm"), &awscloudwatch.CreateAlarmOptions{
		AlarmDescription: jsii.String(fmt.Sprintf("Snapshot runs failed in each of %d five-minute periods in a row "+
			"(docs/operations.md)", SnapshotFailurePeriods)),
		Threshold:          jsii.Number(0),
		EvaluationPeriods:  jsii.Number(SnapshotFailurePeriods),
		DatapointsToAlarm:  jsii.Number(SnapshotFailurePeriods),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	}))
}

// dashboard graphs, per minute: appends, snapshot durations, the oldest
// pending age, errors, throttles, the stream's iterator age, the
// dead-letter queue, where a request's time goes, and the engine caches.
func (s *Stack) dashboard() {
	p := s.Props
	minute := time.Minute
	m := func(name, fn, stat string) awscloudwatch.IMetric {
		return s.sheetlogMetric(name, fn, stat, minute, nil, fn+" "+stat)
	}
	opt := func(label, stat string) *awscloudwatch.MetricOptions {
		return &awscloudwatch.MetricOptions{Period: awscdk.Duration_Minutes(jsii.Number(1)), Statistic: jsii.String(stat), Label: jsii.String(label)}
	}
	graph := func(title string, left []awscloudwatch.IMetric, annotations ...*awscloudwatch.HorizontalAnnotation) awscloudwatch.IWidget {
		props := &awscloudwatch.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)}
		if len(annotations) > 0 {
			props.LeftAnnotations = &annotations
		}
		return awscloudwatch.NewGraphWidget(props)
	}
	line := func(v float64, label string) *awscloudwatch.HorizontalAnnotation {
		return &awscloudwatch.HorizontalAnnotation{Value: jsii.Number(v), Label: jsii.String(label)}
	}
	api, wf, sw := awsschema.FunctionAPI, awsschema.FunctionWorkflow, awsschema.FunctionSweeper
	failed := map[string]string{awsschema.DimResult: awsschema.ResultFailed}
	appendRoute := map[string]string{"route": "/v1/sheets/{sheet}/log", "method": "POST"}

	alarms := make([]interfacesawscloudwatch.IAlarmRef, len(s.Alarms))
	for i, a := range s.Alarms {
		alarms[i] = a
	}
	var errs, throttles, caches []awscloudwatch.IMetric
	for _, f := range s.functions() {
		errs = append(errs, f.fn.MetricErrors(opt(f.name+" errors", "Sum")))
		throttles = append(throttles, f.fn.MetricThrottles(opt(f.name+" throttles", "Sum")))
		caches = append(caches, m(awsschema.MetricCacheBytes, f.name, "Maximum"))
	}
	for _, fn := range []string{wf, sw} {
		errs = append(errs, s.sheetlogMetric(awsschema.MetricSnapshots, fn, "Sum", minute, failed, fn+" failed snapshot runs"))
	}
	latency := []awscloudwatch.IMetric{
		s.sheetlogMetric(awsschema.MetricHTTPDuration, api, "p50", minute, appendRoute, "append handler p50 (s)"),
		s.sheetlogMetric(awsschema.MetricHTTPDuration, api, "p99", minute, appendRoute, "append handler p99 (s)"),
		s.API.MetricDuration(opt(api+" invocation p99 (ms)", "p99")),
	}
	if s.HTTPAPI != nil {
		latency = append(latency,
			s.HTTPAPI.MetricLatency(opt("HTTP API latency p99 (ms)", "p99")),
			s.HTTPAPI.MetricIntegrationLatency(opt("HTTP API integration latency p99 (ms)", "p99")))
	}
	rows := [][]awscloudwatch.IWidget{
		{awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(24), Height: jsii.Number(3),
		})},
		{
			graph("Appends per minute", []awscloudwatch.IMetric{
				m(awsschema.MetricAppendedEntries, api, "Sum"), m(awsschema.MetricAppendConflicts, api, "Sum"),
			}),
			graph("Snapshot duration (s), p50 and p99", []awscloudwatch.IMetric{
				m(awsschema.MetricSnapshotDuration, wf, "p50"), m(awsschema.MetricSnapshotDuration, wf, "p99"),
				m(awsschema.MetricSnapshotDuration, sw, "p50"), m(awsschema.MetricSnapshotDuration, sw, "p99"),
			}),
			graph("Oldest pending workflow past the sweep grace (s)", []awscloudwatch.IMetric{
				m(awsschema.MetricPendingOldestAge, sw, "Maximum"),
			}, line(p.PendingAgeAlarm.Seconds(), "alarm")),
		},
		{
			graph("Errors: functions, failed snapshot runs", errs),
			graph("Throttles", throttles),
			graph("Stream iterator age (ms)", []awscloudwatch.IMetric{
				s.Workflow.Metric(jsii.String("IteratorAge"), opt(wf+" iterator age", "Maximum")),
			}, line(float64(p.IteratorAgeAlarm/time.Millisecond), "alarm")),
		},
		{
			graph("Dead-letter queue depth", []awscloudwatch.IMetric{
				s.DLQ.MetricApproximateNumberOfMessagesVisible(opt("messages visible", "Maximum")),
			}),
			graph("Where an append's time goes", latency),
			graph("Engine caches (bytes) and workflow retries", append(caches,
				m(awsschema.MetricWorkflowRetries, wf, "Sum"), m(awsschema.MetricWorkflowRetries, sw, "Sum"))),
		},
	}
	widgets := make([]*[]awscloudwatch.IWidget, len(rows))
	for i := range rows {
		widgets[i] = &rows[i]
	}
	s.Dashboard = awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName:   jsii.String(*s.StackName()),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
		Widgets:         &widgets,
	})
}

// suppressTracingFindings records why the X-Ray statement names every
// resource.
func (s *Stack) suppressTracingFindings() {
	if s.Props.DisableTracing {
		return
	}
	for _, f := range s.functions() {
		cdknag.NagSuppressions_AddResourceSuppressions(f.fn.Role(), &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-IAM5"),
			Reason: jsii.String("X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level " +
				"permissions, so IAM accepts only * for them; they write trace data and read nothing."),
			AppliesTo: &[]any{"Resource::*"},
		}}, jsii.Bool(true))
	}
}
