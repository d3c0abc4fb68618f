// Command sweeper-lambda is the safety net of sheetlog's workflows on AWS:
// on each scheduled (EventBridge) invocation it lists the entries pending
// for longer than SHEETLOG_SWEEP_GRACE through the table's sparse pending
// index and runs their workflows with the workflow Lambda's code, so a
// workflow whose stream record was lost, expired or dead-lettered still
// completes. It then drains the retire queue: the snapshot retention
// passes due once a grace has ended (internal/lambdarun, retention.go).
// Work per invocation is bounded (SHEETLOG_SWEEP_MAX, and the
// invocation's deadline); what is left waits for the next tick.
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

func main() {
	cfg, err := lambdarun.FromEnv(os.Getenv)
	log := lambdarun.NewLogger(awsschema.FunctionSweeper, cfg.LogLevel)
	if err != nil {
		lambdarun.Fatal(log, "bad configuration", err)
	}
	stores, err := lambdarun.AWSStores(context.Background(), cfg, log)
	if err != nil {
		lambdarun.Fatal(log, "opening the stores", err)
	}
	w := lambdarun.NewWorkflows(stores, cfg, log)
	m := lambdarun.NewMetrics(awsschema.FunctionSweeper, cfg, log)
	// The event (an EventBridge scheduled event) carries nothing the
	// sweep needs; any JSON is accepted so that a manual invocation works.
	lambda.Start(lambdarun.WithMetrics(m, func(ctx context.Context, _ json.RawMessage) (lambdarun.SweepResult, error) {
		lg := log
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			lg = lg.With("requestId", lc.AwsRequestID)
		}
		start := time.Now()
		res, err := w.Sweep(ctx, stores.Dynamo, cfg.SweepGrace, cfg.SweepMax, start)
		if err != nil {
			lg.Error("sweep failed", "err", err)
			return res, err
		}
		lg.Info("sweep done", "found", res.Found, "ran", res.Ran, "failed", res.Failed,
			"unknown", res.Unknown, "deferred", res.Deferred, "grace", cfg.SweepGrace.String(),
			"ms", time.Since(start).Milliseconds())
		// Then the retention passes whose grace has ended.
		res.Retire, err = w.DrainRetireQueue(ctx, stores.Retire, cfg.SweepMax, time.Now)
		if err != nil {
			lg.Error("draining the retire queue failed", "err", err)
			return res, err
		}
		lg.Info("retire queue drained", "passes", res.Retire.Passes, "failed", res.Retire.Failed, "early", res.Retire.Early)
		return res, nil
	}))
}
