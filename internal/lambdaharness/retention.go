package lambdaharness

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sheetlog/sheetlog/pkg/awsschema"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// Retention is the snapshot retention the harness gives the workflow and
// sweeper functions.
type Retention struct {
	// Retain is K (default 2; spreadsheet.RetainAll: keep everything).
	Retain int
	// Grace is G (default 5 s).
	Grace       time.Duration
	TruncateLog bool
}

func (r *Retention) defaults() {
	if r.Retain == 0 {
		r.Retain = spreadsheet.DefaultRetain
	}
	if r.Grace == 0 {
		r.Grace = 5 * time.Second
	}
}

// env is the functions' environment for r, with the retire queue at
// queueURL (the stack's queue, here on moto).
func (r Retention) env(queueURL string) map[string]string {
	retain := max(r.Retain, 0)
	return map[string]string{
		awsschema.EnvSnapshotRetain: strconv.Itoa(retain),
		awsschema.EnvSnapshotGrace:  r.Grace.String(),
		awsschema.EnvTruncateLog:    strconv.FormatBool(r.TruncateLog),
		awsschema.EnvRetireQueueURL: queueURL,
	}
}

// createRetireQueue makes the retire queue on the emulator and returns
// its URL.
func createRetireQueue(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("sheetlog-e2e-retire")})
	if err != nil {
		return "", fmt.Errorf("creating the retire queue: %w", err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// merge returns the union of the maps (later ones win).
func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		maps.Copy(out, m)
	}
	return out
}
