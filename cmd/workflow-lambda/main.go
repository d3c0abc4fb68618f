// Command workflow-lambda runs sheetlog's background workflows on AWS
// Lambda. The event source mapping on the event log table's stream
// delivers the records whose new image has pending (the filter
// awsschema.StreamFilterPattern); each becomes a PendingWorkflowMessage for
// the worker-side engine, and failed records are reported by their stream
// sequence number (see lambdarun.Workflows.HandleStream).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

func main() {
	cfg, err := lambdarun.FromEnv(os.Getenv)
	log := lambdarun.NewLogger(awsschema.FunctionWorkflow, cfg.LogLevel)
	if err != nil {
		lambdarun.Fatal(log, "bad configuration", err)
	}
	stores, err := lambdarun.AWSStores(context.Background(), cfg, log)
	if err != nil {
		lambdarun.Fatal(log, "opening the stores", err)
	}
	m := lambdarun.NewMetrics(awsschema.FunctionWorkflow, cfg, log)
	lambda.Start(lambdarun.WithMetrics(m, lambdarun.NewWorkflows(stores, cfg, log).HandleStream))
}
