package lambdaharness

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sheetlog/sheetlog/internal/lambdarun"
	"github.com/sheetlog/sheetlog/pkg/spreadsheet"
)

// retentionDefaults fills the harness's retention: K = 2 and G = 5 s,
// small so that the suite sees snapshots retired (a negative Retain
// keeps every snapshot). The queue is the harness's own.
func retentionDefaults(r *lambdarun.Retention) {
	if r.Retain == 0 {
		r.Retain = spreadsheet.DefaultRetain
	}
	if r.Grace == 0 {
		r.Grace = 5 * time.Second
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
