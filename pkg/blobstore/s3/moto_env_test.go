package s3blob

import (
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// otherEmulators: TEMPORARY until internal/moto lands; an S3 endpoint
// given in SHEETLOG_TEST_S3_ENDPOINT (e.g. a moto server started by hand).
func otherEmulators(t *testing.T) []emulator {
	ep := os.Getenv("SHEETLOG_TEST_S3_ENDPOINT")
	if ep == "" {
		return nil
	}
	return []emulator{{name: "endpoint", modelChecks: 20, fresh: func(t *testing.T) (aws.Config, string) {
		cfg := aws.Config{
			Region:       "us-east-1",
			Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
			BaseEndpoint: aws.String(ep),
		}
		return cfg, createBucket(t, cfg, "sheetlog-test")
	}}}
}
