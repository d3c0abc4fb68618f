package s3blob

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/sheetlog/sheetlog/internal/moto"
)

// TestMain stops the moto server that the tests started, if any.
func TestMain(m *testing.M) { moto.Main(m) }

// otherEmulators is moto's server, started once per test binary by
// internal/moto (or the endpoint that AWS_ENDPOINT_URL_S3 and friends
// name). Without moto installed, its subtests skip loudly, or fail in CI.
func otherEmulators(*testing.T) []emulator {
	return []emulator{{name: "moto", modelChecks: 20, fresh: motoBucket}}
}

func motoBucket(t *testing.T) (aws.Config, string) {
	t.Helper()
	env := moto.Get(t)
	bucket := moto.Name("sheetlog-blobs")
	in := &s3.CreateBucketInput{Bucket: &bucket}
	if r := env.Config.Region; r != "" && r != "us-east-1" {
		// Outside us-east-1, real S3 wants the region spelt out.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraint(r)}
	}
	if _, err := env.S3().CreateBucket(context.Background(), in); err != nil {
		t.Fatalf("creating bucket %s: %v", bucket, err)
	}
	return env.Config, bucket
}
