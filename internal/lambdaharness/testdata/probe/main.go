// Command probe is a Lambda function for the harness's own tests: it
// echoes, fails, panics or sleeps as its event asks.
package main

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Op string `json:"op"`
	MS int    `json:"ms"`
}

func main() {
	lambda.Start(func(_ context.Context, e event) (map[string]any, error) {
		switch e.Op {
		case "error":
			return nil, errors.New("failed on purpose")
		case "panic":
			panic("panicked on purpose")
		case "sleep":
			// Deaf to ctx on purpose: a function that returned at its
			// deadline would race the emulator's own timeout.
			time.Sleep(time.Duration(e.MS) * time.Millisecond)
		}
		return map[string]any{"op": e.Op, "probe": os.Getenv("PROBE")}, nil
	})
}
