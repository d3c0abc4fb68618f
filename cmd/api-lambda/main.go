// Command api-lambda is the sheetlog HTTP API on AWS Lambda, behind an API
// Gateway HTTP API (payload format 2.0) or a function URL. It serves the
// same pkg/api handler as the single-machine server, over the DynamoDB
// event log and the S3 blob store named by its environment (see
// internal/lambdarun). Clients, stores and the engine cache are built once
// per execution environment and reused by warm invocations.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sheetlog/sheetlog/internal/apigw"
	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/awsschema"
)

func main() {
	cfg, err := lambdarun.FromEnv(os.Getenv)
	log := lambdarun.NewLogger(awsschema.FunctionAPI, cfg.LogLevel)
	if err != nil {
		lambdarun.Fatal(log, "bad configuration", err)
	}
	if cfg.TokenKeySecret == "" {
		// Every instance must seal continuation tokens with the same key.
		lambdarun.Fatal(log, "bad configuration", errors.New(awsschema.EnvTokenKeySecret+" is not set"))
	}
	stores, err := lambdarun.AWSStores(context.Background(), cfg, log)
	if err != nil {
		lambdarun.Fatal(log, "opening the stores", err)
	}
	h, err := lambdarun.APIHandler(stores, cfg, log)
	if err != nil {
		lambdarun.Fatal(log, "building the API handler", err)
	}
	lambda.Start(lambdarun.WithMetrics(lambdarun.NewMetrics(awsschema.FunctionAPI, cfg, log), apigw.Handler(h, lambdarun.APIEventOptions(cfg)...)))
}
